// dlock/context.hpp: deadline and cancellation for every blocking call.
//
// A `Context` is a cheap value: a steady-clock deadline plus a `std::stop_token`. Every dlock
// call that can block takes one and returns (or throws `errc::timeout` / `errc::cancelled`)
// once the deadline passes or a stop is requested.
#pragma once

#include <chrono>
#include <stop_token>

namespace dlock {

/// Deadline + cancellation for one call. Default-constructed: no deadline, never cancelled.
class Context {
 public:
  using clock = std::chrono::steady_clock;

  /// No deadline, no cancellation.
  Context() = default;

  /// No deadline, no cancellation (like Go's `context.Background()`).
  static Context background() { return Context{}; }

  /// Deadline `timeout` from now, optionally cancelled by `stop`.
  static Context with_timeout(clock::duration timeout, std::stop_token stop = {}) {
    return Context{clock::now() + timeout, std::move(stop)};
  }

  /// Deadline at `deadline`, optionally cancelled by `stop`.
  static Context with_deadline(clock::time_point deadline, std::stop_token stop = {}) {
    return Context{deadline, std::move(stop)};
  }

  /// Cancelled by `stop`, no deadline.
  static Context with_stop(std::stop_token stop) {
    return Context{clock::time_point::max(), std::move(stop)};
  }

  /// A copy whose deadline is the earlier of this one and now + `timeout`.
  Context sub(clock::duration timeout) const {
    auto now = clock::now();
    auto d = (deadline_ - now > timeout) ? now + timeout : deadline_;
    return Context{d, stop_};
  }

  /// The deadline; `time_point::max()` when there is none.
  clock::time_point deadline() const noexcept { return deadline_; }
  /// Whether a deadline was set.
  bool has_deadline() const noexcept { return deadline_ != clock::time_point::max(); }
  /// The cancellation token (may be one that can never be stopped).
  const std::stop_token& stop_token() const noexcept { return stop_; }
  /// Whether a stop was requested.
  bool stop_requested() const noexcept { return stop_.stop_requested(); }
  /// Whether the deadline has passed.
  bool expired() const noexcept { return has_deadline() && clock::now() >= deadline_; }
  /// Whether the call should end now (expired or cancelled).
  bool done() const noexcept { return stop_requested() || expired(); }
  /// Time left until the deadline (zero when passed, `duration::max()` when none).
  clock::duration remaining() const noexcept {
    if (!has_deadline()) return clock::duration::max();
    auto r = deadline_ - clock::now();
    return r.count() > 0 ? r : clock::duration::zero();
  }

 private:
  Context(clock::time_point d, std::stop_token s) : deadline_(d), stop_(std::move(s)) {}

  clock::time_point deadline_ = clock::time_point::max();
  std::stop_token stop_;
};

}  // namespace dlock
