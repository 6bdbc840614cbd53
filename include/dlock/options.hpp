// dlock/options.hpp: how a lock is taken: TTL, waiting, retries, auto-renewal, metadata.
//
// All options are C++20 aggregates with defaults, so callers write
// `dlock::LockOptions{.ttl = 10s, .wait = dlock::WaitPolicy::up_to(2s)}` (with
// `std::chrono_literals`).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include "dlock/export.hpp"

namespace dlock {

/// Longest key dlock accepts, in bytes (after the store's prefix is added, stores may be
/// stricter; see their `Capabilities`).
inline constexpr std::size_t kMaxKeyBytes = 1024;
/// Longest TTL dlock accepts: 7 days. Longer "locks" are leases nobody can reason about.
inline constexpr std::chrono::milliseconds kMaxTtl = std::chrono::hours(24 * 7);
/// Longest owner metadata text, in bytes.
inline constexpr std::size_t kMaxMetadataBytes = 4096;

/// How long `lock()`/`acquire()` may wait for a held lock. `try_lock()` never waits.
struct WaitPolicy {
  /// The three kinds of waiting.
  enum class Mode {
    no_wait,  ///< One attempt only.
    up_to,    ///< Wait up to `timeout` (and the call's context deadline).
    forever,  ///< Wait until acquired or the call's context ends.
  };
  /// Which kind. Default: forever (bounded by the context).
  Mode mode = Mode::forever;
  /// For `up_to`: the longest wait. Must be >= 0.
  std::chrono::milliseconds timeout{0};

  /// One attempt, no waiting.
  static constexpr WaitPolicy none() { return {Mode::no_wait, {}}; }
  /// Wait at most `d`.
  static constexpr WaitPolicy up_to(std::chrono::milliseconds d) { return {Mode::up_to, d}; }
  /// Wait until acquired or the context ends.
  static constexpr WaitPolicy forever() { return {Mode::forever, {}}; }
};

/// How the delay between attempts grows when a store cannot notify waiters (and the fallback
/// bound on a notified wait, so a lost notification costs at most one delay).
enum class Backoff {
  constant,     ///< delay, delay, delay, ...
  linear,       ///< delay, 2*delay, 3*delay, ... up to max_delay
  exponential,  ///< delay, 2*delay, 4*delay, ... up to max_delay
};

/// The retry policy of the waiting loop.
struct RetryPolicy {
  /// Most acquire attempts in one waiting call; 0 = unlimited (bounded by the wait policy).
  int max_attempts = 0;
  /// Base delay between attempts. Default 20 ms. Must be > 0.
  std::chrono::milliseconds delay{20};
  /// Growth of the delay. Default exponential.
  Backoff backoff = Backoff::exponential;
  /// Largest delay between attempts. Default 1 s. Also capped by the holder's remaining TTL.
  std::chrono::milliseconds max_delay{1000};
  /// Random jitter as a fraction of each delay, in [0, 1]. Default 0.2 (±20 %).
  double jitter = 0.2;
};

/// How a grant shares its lock with other grants.
///
/// `exclusive` is the mutex; `shared` is the read side of a read-write lock (shared grants hold
/// together, an exclusive grant excludes them all); `permits` takes `count` of the `limit`
/// permits of a counting semaphore. Which modes a store offers is in
/// `Capabilities::supports`; a store refuses the others with `errc::unsupported`.
struct LockMode {
  /// The three kinds of grant.
  enum class Kind : std::uint8_t {
    exclusive,  ///< One holder at a time (default).
    shared,     ///< Holds together with other shared grants; excluded by an exclusive one.
    permits,    ///< `count` of a semaphore's `limit` permits.
  };
  /// Which kind. Default exclusive.
  Kind kind = Kind::exclusive;
  /// For `permits`: how many permits this grant takes (>= 1). Ignored otherwise.
  std::uint32_t count = 1;
  /// For `permits`: the semaphore's number of permits (>= count). Ignored otherwise.
  std::uint32_t limit = 1;

  /// The mutex mode.
  static constexpr LockMode exclusive() noexcept { return {}; }
  /// The read side of a read-write lock.
  static constexpr LockMode shared() noexcept { return {Kind::shared, 1, 1}; }
  /// `count` of a semaphore's `limit` permits.
  static constexpr LockMode permits(std::uint32_t count, std::uint32_t limit) noexcept {
    return {Kind::permits, count, limit};
  }
  /// Same kind and, for permits, the same count and limit.
  friend constexpr bool operator==(const LockMode& a, const LockMode& b) noexcept {
    return a.kind == b.kind &&
           (a.kind != Kind::permits || (a.count == b.count && a.limit == b.limit));
  }
};

/// "exclusive", "shared" or "permits".
DLOCK_API std::string_view to_string(LockMode::Kind kind) noexcept;

/// Why a held lock was lost.
enum class LossReason {
  /// The store said the lock is no longer ours (expired, or taken after expiry, or released
  /// by an operator).
  rejected,
  /// Renewal kept failing (store unreachable) until the lock's validity ended.
  expired,
  /// The store's session or lease ended (e.g. etcd lease revoked, store restarted).
  store_reported,
};

/// "rejected", "expired" or "store_reported".
DLOCK_API std::string_view to_string(LossReason reason) noexcept;

/// What the loss callback receives.
struct LossInfo {
  /// The lock's key (without the store's prefix).
  std::string key{};
  /// The fencing token of the grant that was lost.
  std::uint64_t fencing_token = 0;
  /// Why.
  LossReason reason = LossReason::rejected;
  /// The last error seen while renewing, if any.
  std::error_code error{};
};

/// What the at-risk and recovered callbacks receive.
///
/// A grant is *at risk* when dlock cannot confirm it although its validity has not ended: a
/// renewal failed (the store did not answer), or the store reported its connection or session
/// interrupted (Curator's SUSPENDED). It *recovers* when a renewal succeeds again (or the store
/// reports the session back) before the validity ends; otherwise it is lost at `valid_until`.
struct RiskInfo {
  /// The lock's key (without the store's prefix).
  std::string key{};
  /// The fencing token of the grant.
  std::uint64_t fencing_token = 0;
  /// Why it is at risk (empty when recovered).
  std::error_code error{};
  /// Until when the grant is surely valid (the loss fires then unless it recovers).
  std::chrono::steady_clock::time_point valid_until{};
};

/// Options for one acquisition.
struct LockOptions {
  /// Time to live of the grant. Default 30 s. Must be > 0 and <= kMaxTtl; stores may round it
  /// up to their minimum (etcd: whole seconds).
  std::chrono::milliseconds ttl{30000};
  /// How the grant shares the lock: exclusive (default), shared or permits (see `LockMode`).
  LockMode mode{};
  /// How long `lock()` / `acquire()` waits. Default: forever (bounded by the context).
  WaitPolicy wait = WaitPolicy::forever();
  /// Retry/backoff policy of the waiting loop.
  RetryPolicy retry{};
  /// Keep the lock alive with the process-wide renewal scheduler until it is released.
  /// Default false for the key-based calls and `acquire()`; `with_lock` and `Mutex` turn it on.
  bool auto_renew = false;
  /// Interval between automatic renewals; 0 = ttl / 3.
  std::chrono::milliseconds renew_interval{0};
  /// Free text stored with the lock (next to the host name and process id dlock adds).
  std::string metadata{};
  /// Reentrant: an owner that acquires a lock it already holds through the same store object
  /// (in a mode the grant covers) gets another `Lease` on that grant at once, with no round
  /// trip; the grant is released when the owner's last lease is. Asking for a mode the grant
  /// does not cover (a reader asking to write) fails with `errc::would_deadlock`. Default off:
  /// a second acquisition waits like any other holder.
  bool reentrant = false;
  /// The owner for `reentrant`: empty (default) = the calling thread; set an id of your own
  /// for code whose work moves between threads (coroutines, thread pools).
  std::string owner{};
  /// Called once, from a dlock thread, when the lock is lost while held. Must not block long.
  std::function<void(const LossInfo&)> on_lost{};
  /// Called from a dlock thread each time the grant becomes at risk (see `RiskInfo`). Must not
  /// block long.
  std::function<void(const RiskInfo&)> on_at_risk{};
  /// Called from a dlock thread each time the grant recovers from being at risk.
  std::function<void(const RiskInfo&)> on_recovered{};
};

}  // namespace dlock
