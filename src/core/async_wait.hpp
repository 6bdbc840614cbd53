// One asynchronous wait of an acquire session (`AcquireSession::async_wait`), for stores to
// build their native waits on: it completes exactly once, when the store calls `notify()` (the
// lock may have changed), at `until`, or when the context ends (deadline or stop), holding no
// thread meanwhile. Written once here so every store's native wait has the same timing.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>

#include "core/backend.hpp"

namespace dlock::detail {

class AsyncWait : public std::enable_shared_from_this<AsyncWait> {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// Arms the timer (the earlier of `until` and the context's deadline) and the stop.
  static std::shared_ptr<AsyncWait> start(const Context& ctx, time_point until,
                                          AcquireSession::WaitDone done);

  /// The lock may have changed: completes with `true` (no-op once completed).
  void notify() noexcept { complete(true); }
  /// Whether it completed.
  bool completed() const noexcept { return fired_.load(); }

 private:
  explicit AsyncWait(AcquireSession::WaitDone done) : done_(std::move(done)) {}
  void complete(bool notified) noexcept;

  std::atomic<bool> fired_{false};
  AcquireSession::WaitDone done_;
  std::optional<std::stop_callback<std::function<void()>>> on_stop_;
};

}  // namespace dlock::detail
