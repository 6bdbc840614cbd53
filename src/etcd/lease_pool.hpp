// Leases that finished a grant and carry no key any more, kept for the next acquisition of
// the same TTL by the same store object. Reusing one saves the LeaseGrant and LeaseRevoke
// writes of a lease per acquisition; the attempt that reuses it sends a keep-alive with its
// transaction, so etcd's expiry still covers the new grant's validity.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace dlock::detail::etcd {

class LeasePool {
 public:
  using clock = std::chrono::steady_clock;

  struct Entry {
    std::int64_t id = 0;
    std::int64_t ttl_seconds = 0;
    clock::time_point expires;  ///< Earliest time etcd may expire it without a keep-alive.
  };

  /// A pooled lease of `ttl_seconds` that is not about to expire, or nullopt.
  std::optional<Entry> take(std::int64_t ttl_seconds);
  /// Pools `e`. Returns false when the pool is full (the caller revokes it).
  bool give(const Entry& e);
  /// Empties the pool and returns what it held (a closing store revokes them).
  std::vector<Entry> drain();

 private:
  static constexpr std::size_t kMaxPerTtl = 64;
  std::mutex mu_;
  std::map<std::int64_t, std::vector<Entry>> free_;
};

}  // namespace dlock::detail::etcd
