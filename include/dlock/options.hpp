// dlock/options.hpp: how a lock is taken: TTL, waiting, retries, auto-renewal, metadata.
//
// All options are C++20 aggregates with defaults, so callers write
// `dlock::LockOptions{.ttl = 10s, .wait = dlock::WaitPolicy::up_to(2s)}`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

namespace dlock {

using namespace std::chrono_literals;

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
  std::chrono::milliseconds delay = 20ms;
  /// Growth of the delay. Default exponential.
  Backoff backoff = Backoff::exponential;
  /// Largest delay between attempts. Default 1 s. Also capped by the holder's remaining TTL.
  std::chrono::milliseconds max_delay = 1000ms;
  /// Random jitter as a fraction of each delay, in [0, 1]. Default 0.2 (±20 %).
  double jitter = 0.2;
};

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

/// Options for one acquisition.
struct LockOptions {
  /// Time to live of the grant. Default 30 s. Must be > 0 and <= kMaxTtl; stores may round it
  /// up to their minimum (etcd: whole seconds).
  std::chrono::milliseconds ttl = 30s;
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
  /// Called once, from a dlock thread, when the lock is lost while held. Must not block long.
  std::function<void(const LossInfo&)> on_lost{};
};

}  // namespace dlock
