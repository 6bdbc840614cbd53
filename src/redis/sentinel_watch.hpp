// Follows a Sentinel group's `+switch-master` announcements for one master: subscribed at one
// sentinel at a time (the next one after a failure), it calls `on_switch` as soon as the
// group moves the master, so the store's connections re-resolve the master at once instead
// of at their next failed request (which, with an old master cut off by a partition, would
// cost a command timeout).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace dlock::detail::redis {

class SentinelWatch {
 public:
  /// `options` gives the sentinels' credentials and timeouts (host and port come from
  /// `sentinels`). `on_switch` runs on the I/O thread of `io`.
  SentinelWatch(asio::io_context& io, ConnectionOptions options, std::vector<Address> sentinels,
                std::string master, std::function<void()> on_switch);
  ~SentinelWatch();
  SentinelWatch(const SentinelWatch&) = delete;
  SentinelWatch& operator=(const SentinelWatch&) = delete;

  /// Unsubscribes for good. Never blocks.
  void close() noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace dlock::detail::redis
