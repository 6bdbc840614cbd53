// The shared state of one grant: validity, renewal, release and the loss signal.
#pragma once

#include <unistd.h>

#include <atomic>
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
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/clock.hpp"
#include "core/fork_guard.hpp"
#include "core/stats.hpp"
#include "dlock/lease.hpp"
#include "dlock/log.hpp"

namespace dlock::detail {

class LeaseState;
class RenewalScheduler;

/// What a store object shares with its leases; outlives the `Store` handles while leases live.
struct StoreShared {
  StoreShared(std::shared_ptr<Backend> backend, const Clock& clock, RenewalScheduler& scheduler);
  StoreShared(const StoreShared&) = delete;
  StoreShared& operator=(const StoreShared&) = delete;
  /// In a forked child, leaks the backend instead of destroying it (fork_guard.hpp).
  ~StoreShared();

  const pid_t pid = current_pid();  ///< The process that opened the store.
  std::shared_ptr<Backend> backend;
  const std::string scheme;
  const Capabilities caps;
  const Clock& clock;
  RenewalScheduler& scheduler;
  Stats stats;
  /// Set when `close()` begins: every later call fails with `errc::closed`.
  std::atomic<bool> closed{false};
  /// Set when `close()` has closed the backend (after releasing every lease through it).
  std::atomic<bool> backend_closed{false};

  /// Throws `errc::closed` after close and `errc::unsupported` in a forked child.
  void check_open(std::string_view key, std::string_view step) const;

  /// Live grants, so that `close()` can release them. Each state erases itself before it dies,
  /// so an entry found under `live_mu` points at a live object (`weak_from_this()` tells
  /// whether it is dying).
  std::mutex live_mu;
  std::unordered_set<LeaseState*> live;
};

/// The drift margin subtracted from every validity: 1 % of the TTL + 2 ms (as redsync).
std::chrono::milliseconds drift_margin(std::chrono::milliseconds ttl);

/// A grant that core accepted: what `create` needs besides the store.
struct GrantInfo {
  std::string key;
  std::string token;
  LockMode mode;
  std::uint64_t fencing_token;
  std::chrono::milliseconds ttl;
  std::chrono::steady_clock::time_point sent_at;  ///< When the TTL started at the latest.
};

class LeaseState : public std::enable_shared_from_this<LeaseState> {
 public:
  using clock = std::chrono::steady_clock;

  /// Creates the state of a grant, registers it as live and schedules its renewal (or its
  /// validity check).
  static std::shared_ptr<LeaseState> create(std::shared_ptr<StoreShared> store,
                                            std::unique_ptr<GrantState> grant, GrantInfo info,
                                            const LockOptions& opts);
  ~LeaseState();

  const std::string& key() const noexcept { return key_; }
  const std::string& token() const noexcept { return token_; }
  LockMode mode() const;
  std::uint64_t fencing_token() const noexcept { return fencing_; }
  clock::time_point acquired_at() const noexcept { return acquired_at_; }
  clock::time_point valid_until() const;
  std::chrono::milliseconds ttl() const;
  bool held() const;
  bool lost() const;
  std::stop_token lost_token() const;
  const std::string& scheme() const { return store_->scheme; }
  /// The store object this grant belongs to.
  StoreShared& store() const noexcept { return *store_; }
  /// The store's state of the grant (for the scheduler's batches).
  GrantState& grant() const noexcept { return *grant_; }

  void renew(const Context& ctx, std::chrono::milliseconds ttl);
  void downgrade(const Context& ctx);
  /// Replaces the grant's stored metadata (an election's proclaim). Throws `Error`.
  void set_metadata(const Context& ctx, const std::string& metadata);
  ReleaseResult release(const Context& ctx) noexcept;
  void on_lost(std::function<void(const LossInfo&)> cb);
  void set_auto_renew(bool on, std::chrono::milliseconds interval);
  /// The current auto-renew switch and interval.
  std::pair<bool, std::chrono::milliseconds> auto_renew_setting() const;

  /// Fires the loss signal once (no-op after release or an earlier loss).
  void mark_lost(LossReason reason, std::error_code error) noexcept;
  /// The store reported the grant gone (`GrantState::report_lost`): fires the loss signal on a
  /// scheduler thread, never on the store's. Takes the reporter's reference, so that the lease
  /// (and its grant state) never ends on the store's thread, where the store holds the lock
  /// that the grant state's destructor takes.
  static void store_reported(std::shared_ptr<LeaseState> self, std::error_code error) noexcept;

  bool at_risk() const;
  std::stop_token at_risk_token() const;
  void on_at_risk(std::function<void(const RiskInfo&)> cb);
  void on_recovered(std::function<void(const RiskInfo&)> cb);
  /// The store reported the grant at risk (`error`) or recovered (no error): the signal fires
  /// on a scheduler thread (taking the reporter's reference, like `store_reported`).
  static void store_reported_risk(std::shared_ptr<LeaseState> self, std::error_code error) noexcept;

  /// Blocks until the grant is released or lost, `ctx` ends or `stop` is requested. Returns
  /// true if it ended because the grant ended.
  bool wait_ended(const Context& ctx, std::stop_token stop);

  // ---- the renewal scheduler's entry points ----
  /// Whether this lease's renewals go through the scheduler's batches.
  bool batchable() const noexcept { return store_->caps.extends_in_batches; }
  /// What a due tick sends: decided by `begin_tick`, applied by `end_tick`.
  struct RenewalPlan {
    std::chrono::milliseconds ttl;
    clock::time_point deadline;
  };
  /// The first half of a tick: nothing to send (stale generation, rescheduled, or the validity
  /// ended: then the loss fires) or a renewal to send.
  std::optional<RenewalPlan> begin_tick(std::uint64_t generation) noexcept;
  /// The second half: applies the result of the renewal sent at `sent`.
  void end_tick(const RenewalPlan& plan, clock::time_point sent, GrantResult result) noexcept;
  /// Both halves with one `Backend::extend` in between (a lease that is not batched).
  void tick(std::uint64_t generation) noexcept;

 private:
  enum class Phase { held, released, lost };
  LeaseState(std::shared_ptr<StoreShared> store, std::unique_ptr<GrantState> grant, GrantInfo info);
  // Picks the next tick from the current state and queues it. Requires mu_ held.
  void reschedule_locked(clock::time_point from);
  std::chrono::milliseconds interval_locked() const;
  // Applies a successful extension sent at `sent` with `ttl`. Requires mu_ held.
  void extended_locked(clock::time_point sent, std::chrono::milliseconds ttl);
  // A change of the at-risk state, decided under mu_ and signalled after it is released.
  struct RiskChange {
    std::vector<std::function<void(const RiskInfo&)>> callbacks;
    std::stop_source stop{std::nostopstate};
    RiskInfo info;
    // The record for the log hook ("at risk", "recovered"; none when nothing changed).
    LogLevel level = LogLevel::off;
    std::string_view message, store;
    void fire() noexcept;
  };
  // Adds the time since the grant to the hold-time histogram (once: at release or loss).
  void record_hold() noexcept;
  // A record of this grant for the log hook. Call without mu_ held.
  void note(LogLevel level, std::string_view message, std::error_code error = {},
            std::initializer_list<LogField> extra = {}) const noexcept;
  // Enter or leave the at-risk state (no change when already there). Require mu_ held.
  RiskChange enter_risk_locked(std::error_code error);
  RiskChange leave_risk_locked();
  void unregister() noexcept;
  clock::time_point now() const noexcept { return store_->clock.now(); }

  const std::shared_ptr<StoreShared> store_;
  std::unique_ptr<GrantState> grant_;  // Never null; leaked in a forked child.
  const std::string key_, token_;

  const std::uint64_t fencing_;
  const clock::time_point acquired_at_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_ = Phase::held;
  LockMode mode_;          // Changes once at most: a downgrade from exclusive to shared.
  bool was_lost_ = false;  // Stays true after a later release().
  LossReason loss_reason_ = LossReason::rejected;
  clock::time_point valid_until_;
  std::chrono::milliseconds ttl_;
  bool auto_renew_ = false;
  std::chrono::milliseconds interval_{0};
  int renewing_ = 0;
  std::uint64_t generation_ = 0;
  std::error_code last_error_;
  std::vector<std::function<void(const LossInfo&)>> callbacks_;
  bool at_risk_ = false;
  std::vector<std::function<void(const RiskInfo&)>> risk_callbacks_, recovered_callbacks_;
  // The current risk episode's token source, made on the first at_risk_token() call.
  mutable std::stop_source risk_src_{std::nostopstate};
  // Created on the first lost_token() call: most leases never need one.
  mutable std::stop_source lost_src_{std::nostopstate};
};

}  // namespace dlock::detail
