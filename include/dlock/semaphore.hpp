// dlock/semaphore.hpp: a distributed counting semaphore with expiring permits.
//
// `Semaphore(store, name, limit)` names a semaphore of `limit` permits shared by everyone who
// opens the same name in the same store. `acquire(ctx, n)` waits for `n` permits and returns
// them as a `Permit` (a `Lease`: RAII, fencing token, renewal, loss signal); a holder that
// crashes gives its permits back when their TTL ends (at once on `file://`, whose kernel locks
// die with the process). The limit is stored with the semaphore while anyone holds or waits
// for it: opening it with a different limit then fails with `errc::invalid_argument`, never
// silently changes it. Needs a store with `Capabilities::permits_mode`. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Permits of a semaphore: a lease whose mode is `LockMode::permits`.
using Permit = Lease;

/// A named counting semaphore in a store.
class DLOCK_API Semaphore {
 public:
  /// The semaphore `name` of `limit` permits (>= 1) in `store`. `opts` applies to every
  /// acquisition (TTL, auto-renewal, metadata, retries; `wait` and `mode` are per call).
  /// Throws `Error(invalid_argument)` for a limit of 0.
  Semaphore(Store store, std::string name, std::uint32_t limit, LockOptions opts = {});

  /// Waits for `n` permits (1 <= n <= limit) as `opts.wait` (default: forever) and `ctx`
  /// allow. Throws `Error` like `Store::acquire` (`invalid_argument` for a bad `n` or a limit
  /// that differs from the stored one).
  Permit acquire(const Context& ctx, std::uint32_t n = 1);
  /// One attempt for `n` permits; empty when they are not available now.
  std::optional<Permit> try_acquire(const Context& ctx, std::uint32_t n = 1);
  /// Permits free now: the limit minus those held (one round trip; a snapshot).
  std::uint32_t available(const Context& ctx);

  /// The number of permits.
  std::uint32_t limit() const noexcept { return limit_; }
  /// The semaphore's name.
  const std::string& name() const noexcept { return name_; }

 private:
  LockOptions options(std::uint32_t n) const;
  Store store_;
  std::string name_;
  std::uint32_t limit_;
  LockOptions opts_;
};

}  // namespace dlock
