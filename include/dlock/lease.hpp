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
#include "dlock/options.hpp"

namespace dlock {

namespace detail {
class LeaseState;
}

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
class Lease {
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
  /// synchronously: no renewal of this grant runs after `release()` returns.
  ReleaseResult release(const Context& ctx = {}) noexcept;

  /// A token that is stopped when the grant is lost while held (not on a normal release).
  std::stop_token lost_token() const noexcept;
  /// Whether the loss signal fired.
  bool lost() const noexcept;
  /// Registers a callback fired once, from a dlock thread, when the grant is lost. If it is
  /// already lost, `cb` runs at once on the calling thread.
  void on_lost(std::function<void(const LossInfo&)> cb);

  /// Turns process-wide automatic renewal on (interval 0 = TTL/3) or off.
  void set_auto_renew(bool on, std::chrono::milliseconds interval = std::chrono::milliseconds{0});

  /// Internal: wraps a state created by the core.
  explicit Lease(std::shared_ptr<detail::LeaseState> state) noexcept;
  /// Internal: the shared state.
  const std::shared_ptr<detail::LeaseState>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::LeaseState> state_;
};

}  // namespace dlock
