// The steady clock that core measures validity, renewals and waits with, behind an interface so
// that unit tests drive time by hand instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>

namespace dlock::detail {

/// A steady clock. Thread-safe.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  /// Now, on this clock.
  virtual time_point now() const noexcept = 0;
};

/// `std::chrono::steady_clock`: what every store object uses outside tests.
class SteadyClock final : public Clock {
 public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
  /// The one instance.
  static const SteadyClock& instance() noexcept {
    static const SteadyClock c;
    return c;
  }
};

/// A clock that moves only when told (tests). Starts at the real steady time of its creation,
/// so `Context` deadlines computed from it stay meaningful.
class ManualClock final : public Clock {
 public:
  ManualClock() : now_(std::chrono::steady_clock::now().time_since_epoch().count()) {}
  time_point now() const noexcept override { return time_point(duration(now_.load())); }
  /// Moves the clock forward by `d`.
  void advance(duration d) noexcept { now_ += d.count(); }
  /// Moves the clock to `t` if that is later than now.
  void advance_to(time_point t) noexcept {
    auto want = t.time_since_epoch().count();
    auto cur = now_.load();
    while (cur < want && !now_.compare_exchange_weak(cur, want)) {
    }
  }

 private:
  std::atomic<duration::rep> now_;
};

}  // namespace dlock::detail
