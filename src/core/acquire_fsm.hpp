// The waiting loop of one acquisition as an I/O-free state machine: it decides what comes next
// (an attempt, a wait until some time, success, giving up) from what the store answered and
// the clock; a driver does the I/O. The blocking driver (StoreCore::acquire) runs it on the
// caller's thread with the session's blocking calls; the asynchronous driver (async_acquire.*)
// runs the same machine with the session's asynchronous calls. One loop, two shells.
//
// Not thread-safe: a driver feeds it one event at a time.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "core/backend.hpp"
#include "core/lease_state.hpp"
#include "dlock/lease.hpp"
#include "dlock/options.hpp"

namespace dlock::detail {

class AcquireFsm {
 public:
  using clock = std::chrono::steady_clock;

  /// What the driver does next.
  struct Step {
    enum class Kind {
      attempt,  ///< Call the session's attempt with `context()`, then `attempted`.
      wait,     ///< Call the session's wait until `until`, then `waited`.
      won,      ///< Done: `take_lease()`.
      lost,     ///< Done without the lock (one attempt only): abandon the session.
      failed,   ///< Done: release `take_late_grant()` if any, abandon the session, `error`.
    };
    Kind kind = Kind::attempt;
    clock::time_point until{};
    std::exception_ptr error{};
  };

  /// Checks the arguments (throws `Error`) and prepares the request. `single_attempt` (or a
  /// no-wait policy) makes one attempt.
  AcquireFsm(std::shared_ptr<StoreShared> store, std::string key, const LockOptions& opts,
             const Context& ctx, bool single_attempt);

  const AcquireRequest& request() const noexcept { return req_; }
  /// The context for the session's calls: the caller's stop token and the acquisition's
  /// deadline (the earlier of the context's and the wait policy's).
  const Context& context() const noexcept { return call_; }
  /// Whether the acquisition waits (and so lines up locally behind this store object's other
  /// waiters of the key).
  bool waits() const noexcept { return req_.waits; }
  const std::string& scheme() const noexcept { return store_->scheme; }

  /// The first step (an attempt, unless the call was cancelled or the store closed).
  Step start();
  /// The attempt's answer.
  Step attempted(Attempt attempt);
  /// The attempt (or the session's start) threw.
  Step threw(std::exception_ptr error);
  /// The wait threw.
  Step wait_threw(std::exception_ptr error) { return fail(std::move(error)); }
  /// The wait ended (`notified`: by a change of the lock rather than by time).
  Step waited(bool notified);
  /// The caller gave up while waiting in the local line (deadline or stop).
  Step gave_up_in_line();

  /// After `won`: the lease (once).
  Lease take_lease();
  /// After `failed`: a grant to release before giving up (one that came too late), or null.
  std::unique_ptr<GrantState> take_late_grant() noexcept { return std::move(late_grant_); }

 private:
  Step next_attempt();
  Step fail(errc code, std::string detail);
  Step fail(std::exception_ptr error);

  const std::shared_ptr<StoreShared> store_;
  const LockOptions opts_;
  AcquireRequest req_;
  Context call_;
  clock::time_point start_{}, sent_{};
  int attempts_ = 0;
  std::optional<Lease> lease_;
  std::unique_ptr<GrantState> late_grant_;
};

}  // namespace dlock::detail
