// The shared state of one grant: validity, renewal, release and the loss signal.
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/fork_guard.hpp"
#include "core/stats.hpp"
#include "dlock/lease.hpp"

namespace dlock::detail {

class LeaseState;

/// What a store core shares with its leases; outlives the `Store` handles while leases live.
struct CoreShared {
  CoreShared() = default;
  CoreShared(const CoreShared&) = delete;
  CoreShared& operator=(const CoreShared&) = delete;
  /// In a forked child, leaks the backend instead of destroying it (fork_guard.hpp).
  ~CoreShared();

  const pid_t pid = current_pid();  ///< The process that opened the store.
  std::shared_ptr<Backend> backend;
  std::string scheme;
  Stats stats;

  /// Live grants by token, so a store's loss report and `close()` can find them. The key views
  /// the state's own token and each state erases its entry before it dies, so an entry found
  /// under `live_mu` points at a live object (`weak_from_this()` tells whether it is dying).
  std::mutex live_mu;
  std::unordered_map<std::string_view, LeaseState*> live;
};

/// The drift margin subtracted from every validity: 1 % of the TTL + 2 ms (as redsync).
std::chrono::milliseconds drift_margin(std::chrono::milliseconds ttl);

class LeaseState : public std::enable_shared_from_this<LeaseState> {
 public:
  using clock = std::chrono::steady_clock;

  /// Creates the state of a grant won by a request sent at `sent_at`, registers it as live
  /// and schedules its renewal (or its validity check).
  static std::shared_ptr<LeaseState> create(std::shared_ptr<CoreShared> core, std::string key,
                                            std::string token, std::uint64_t fencing,
                                            std::chrono::milliseconds ttl,
                                            clock::time_point sent_at, const LockOptions& opts);
  ~LeaseState();

  const std::string& key() const noexcept { return key_; }
  const std::string& token() const noexcept { return token_; }
  std::uint64_t fencing_token() const noexcept { return fencing_; }
  clock::time_point acquired_at() const noexcept { return acquired_at_; }
  clock::time_point valid_until() const;
  std::chrono::milliseconds ttl() const;
  bool held() const;
  bool lost() const;
  std::stop_token lost_token() const;
  const std::string& scheme() const { return core_->scheme; }

  void renew(const Context& ctx, std::chrono::milliseconds ttl);
  ReleaseResult release(const Context& ctx) noexcept;
  void on_lost(std::function<void(const LossInfo&)> cb);
  void set_auto_renew(bool on, std::chrono::milliseconds interval);
  /// The current auto-renew switch and interval.
  std::pair<bool, std::chrono::milliseconds> auto_renew_setting() const;

  /// Fires the loss signal once (no-op after release or an earlier loss).
  void mark_lost(LossReason reason, std::error_code error) noexcept;

  /// Blocks until the grant is released or lost, `ctx` ends or `stop` is requested. Returns
  /// true if it ended because the grant ended.
  bool wait_ended(const Context& ctx, std::stop_token stop);

  /// Scheduler entry point: renew or check validity if `generation` is still current.
  void tick(std::uint64_t generation) noexcept;
  /// Like `tick` for each (lease, generation), with the renewals of leases of one store
  /// object sent as one batch (`Backend::extend_many`).
  static void tick_together(
      std::vector<std::pair<std::shared_ptr<LeaseState>, std::uint64_t>>& due) noexcept;

 private:
  enum class Phase { held, released, lost };
  LeaseState(std::shared_ptr<CoreShared> core, std::string key, std::string token,
             std::uint64_t fencing, std::chrono::milliseconds ttl, clock::time_point sent_at);
  // Picks the next tick from the current state and queues it. Requires mu_ held.
  void reschedule_locked(clock::time_point from);
  std::chrono::milliseconds interval_locked() const;
  // What a due tick sends: decided by begin_tick under the lock, applied by end_tick.
  struct RenewalPlan {
    std::chrono::milliseconds ttl;
    clock::time_point deadline;
  };
  // The first half of a tick: nothing to send (stale, rescheduled, or lost) or a renewal.
  std::optional<RenewalPlan> begin_tick(std::uint64_t generation) noexcept;
  // The second half: applies the renewal's result (1 ok, 0 rejected, -1 error).
  void end_tick(const RenewalPlan& plan, clock::time_point sent, int result,
                std::error_code err) noexcept;
  // Whether this lease's renewals go through the scheduler's batches.
  bool batchable() const;
  // One extend round trip with `renewing_` accounting; returns 1 ok, 0 rejected, -1 error.
  int extend_once(const Context& ctx, std::chrono::milliseconds ttl, std::error_code& err);

  const std::shared_ptr<CoreShared> core_;
  const std::string key_, token_;
  const std::uint64_t fencing_;
  const clock::time_point acquired_at_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_ = Phase::held;
  bool was_lost_ = false;  // Stays true after a later release().
  clock::time_point valid_until_;
  std::chrono::milliseconds ttl_;
  bool auto_renew_ = false;
  std::chrono::milliseconds interval_{0};
  int renewing_ = 0;
  std::uint64_t generation_ = 0;
  std::error_code last_error_;
  std::vector<std::function<void(const LossInfo&)>> callbacks_;
  // Created on the first lost_token() call: most leases never need one.
  mutable std::stop_source lost_src_{std::nostopstate};
};

}  // namespace dlock::detail
