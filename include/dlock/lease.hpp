// dlock/lease.hpp: the lock handle, a value you hold.
//
// A `Lease` is one grant of one lock. It is move-only; destroying it releases the lock
// (never throwing). It carries the grant's fencing token, its validity on the steady clock and
// a loss signal (a `std::stop_token` plus callbacks) that fires when the lock is lost while
// held. Thread-safe: all members may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <system_error>

#include "dlock/context.hpp"
#include "dlock/export.hpp"
#include "dlock/options.hpp"

namespace dlock {

namespace detail {
class LeaseState;
struct Reentry;
struct Access;
}  // namespace detail

/// The outcome of `Lease::release()`.
enum class ReleaseStatus {
  released,          ///< The store deleted our grant.
  already_released,  ///< `release()` had already been called (or the lease is empty).
  not_held,          ///< The store no longer had our grant (expired or taken over).
  failed,            ///< The store could not be asked; see `error`. The grant expires by TTL.
};

/// `Lease::release()`'s result: a status and, for `failed`, the error.
struct ReleaseResult {
  /// What happened.
  ReleaseStatus status = ReleaseStatus::released;
  /// The error for `failed` (and `errc::not_held` for `not_held`).
  std::error_code error{};
  /// True for `released`.
  explicit operator bool() const noexcept { return status == ReleaseStatus::released; }
};

/// One held grant of a lock. Obtained from `Store::acquire` / `Store::try_acquire`.
class DLOCK_API Lease {
 public:
  using clock = std::chrono::steady_clock;

  /// An empty lease (holds nothing).
  Lease() noexcept;
  Lease(Lease&&) noexcept;
  /// Releases the held grant (if any) first, then takes `other`'s.
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  /// Releases the grant (one round trip), swallowing every error. Never throws.
  ~Lease();

  /// Whether this object refers to a grant (even one since released or lost).
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// The lock's key (without the store's prefix). Empty for an empty lease.
  const std::string& key() const noexcept;
  /// The grant's fencing token: strictly increasing per key across all holders of the store.
  /// Pass it to the protected resource so it can reject writes from a stale holder.
  std::uint64_t fencing_token() const noexcept;
  /// The grant's random token (128 bits, hex). Secret: anyone who knows it can release.
  const std::string& token() const noexcept;
  /// When the acquire request that won was sent (steady clock).
  clock::time_point acquired_at() const noexcept;
  /// Until when the grant is surely valid: send time of the last successful acquire/renew +
  /// TTL - drift margin (1 % of TTL + 2 ms).
  clock::time_point valid_until() const noexcept;
  /// The TTL of the last acquire/renew.
  std::chrono::milliseconds ttl() const noexcept;

  /// Whether the grant is held: not released, not lost, and still within its validity.
  bool held() const noexcept;

  /// Extends the grant to `ttl` from now (one round trip). Throws `Error` with
  /// `errc::not_held` (released/expired/taken: also fires the loss signal), `errc::timeout`,
  /// `errc::cancelled`, `errc::unavailable`, `errc::invalid_argument` (bad TTL).
  void renew(const Context& ctx, std::chrono::milliseconds ttl);
  /// Same, with the grant's current TTL and no deadline beyond the TTL.
  void renew();

  /// Releases the grant (one round trip). Idempotent, never throws. Stops auto-renewal
  /// synchronously: no renewal of this grant runs after `release()` returns. A lease taken
  /// with `LockOptions::reentrant` releases only its share (no round trip) while other leases
  /// of the same owner still hold the grant; the last one releases the grant.
  ReleaseResult release(const Context& ctx = {}) noexcept;

  /// Turns an exclusive grant into a shared one without a gap: no writer can take the lock in
  /// between (the read-write lock's downgrade; one round trip). The fencing token stays. A
  /// shared grant stays as it is. Throws `Error`: `unsupported` (the store cannot:
  /// `Capabilities::downgrades`), `invalid_argument` (a semaphore permit), `not_held`.
  void downgrade(const Context& ctx = {});

  /// A token that is stopped when the grant is lost while held (not on a normal release).
  std::stop_token lost_token() const noexcept;
  /// Whether the loss signal fired.
  bool lost() const noexcept;
  /// Registers a callback fired once, from a dlock thread, when the grant is lost. If it is
  /// already lost, `cb` runs at once on the calling thread.
  void on_lost(std::function<void(const LossInfo&)> cb);

  /// Whether the grant is at risk now: held, but a renewal failed or the store reported its
  /// connection interrupted, and no renewal has succeeded since (see `RiskInfo`).
  bool at_risk() const noexcept;
  /// A token that is stopped while the grant is at risk (or once it is lost). Each risk
  /// episode has its own token: after a recovery, call again for a fresh one.
  std::stop_token at_risk_token() const noexcept;
  /// Registers a callback fired, from a dlock thread, each time the grant becomes at risk. If
  /// it is at risk now, `cb` runs at once on the calling thread too.
  void on_at_risk(std::function<void(const RiskInfo&)> cb);
  /// Registers a callback fired, from a dlock thread, each time the grant recovers.
  void on_recovered(std::function<void(const RiskInfo&)> cb);

  /// Turns process-wide automatic renewal on (interval 0 = TTL/3) or off.
  void set_auto_renew(bool on, std::chrono::milliseconds interval = std::chrono::milliseconds{0});

  /// How this grant holds its lock (exclusive, shared, or some permits).
  LockMode mode() const noexcept;

 private:
  friend struct detail::Access;
  explicit Lease(std::shared_ptr<detail::LeaseState> state,
                 std::shared_ptr<detail::Reentry> reentry = nullptr) noexcept;

  std::shared_ptr<detail::LeaseState> state_;
  // For a reentrant lease: the share of its owner's grant; `released_share_` once given back.
  std::shared_ptr<detail::Reentry> reentry_;
  bool released_share_ = false;
};

}  // namespace dlock
