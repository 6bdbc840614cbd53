// Redis Sentinel: asks the sentinels where the master of a named group is.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace dlock::detail::redis {

class SentinelLocator {
 public:
  struct Address {
    std::string host;
    std::uint16_t port = 0;
  };

  SentinelLocator(std::vector<Address> sentinels, std::string master, std::string user,
                  std::string password, std::chrono::milliseconds timeout);

  /// Asks the sentinels in turn (`SENTINEL get-master-addr-by-name`), each bounded by
  /// timeout / number of sentinels. Blocks. Returns false with `error` set when none knows.
  /// The sentinel that answered is asked first next time.
  bool locate(Address& out, std::string& error);

 private:
  std::mutex mu_;
  std::vector<Address> sentinels_;
  std::string master_, user_, password_;
  std::chrono::milliseconds timeout_;
};

}  // namespace dlock::detail::redis
