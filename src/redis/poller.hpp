// Blocking socket steps bounded by a deadline and interruptible from another thread, for the
// caller-driven connection (direct_connection.hpp): connect, write all, wait in poll.
#pragma once

#include <chrono>
#include <string>

#include "redis/connection_options.hpp"
#include "redis/result.hpp"

namespace dlock::detail::redis {

class Poller {
 public:
  using clock = std::chrono::steady_clock;
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  /// Waits until `fd` (if >= 0) has one of `events`, `wake()` is called or `until` passes.
  /// Returns the events of `fd` (0 when woken or timed out); an error or hang-up is reported
  /// as readable (the read that follows says what it was).
  int wait(int fd, short events, clock::time_point until);
  /// Interrupts a `wait` (of any thread). Never blocks.
  void wake() noexcept;
  /// Resolves `target` and connects a non-blocking TCP socket (TCP_NODELAY), bounded by
  /// `until`. Returns the descriptor, or -1 with `why`.
  int connect(const Address& target, clock::time_point until, Failure& why);
  /// Writes all of `wire` to `fd`, bounded by `until`; false with `why` on failure.
  bool send_all(int fd, const std::string& wire, clock::time_point until, Failure& why);

 private:
  const int wake_fd_;
};

/// "<what>: <strerror(err)>".
std::string errno_text(const char* what, int err);

}  // namespace dlock::detail::redis
