// dlock/async.hpp: the asynchronous API with plain callbacks, `start_*` (dlock/asio.hpp adapts it
// to Asio completion tokens as `async_*`: callbacks, futures, coroutines, deferred).
//
// Each call starts an operation and returns at once; its callback runs exactly once, on a
// dlock thread (never on the starting thread), and must not block. An acquisition that waits
// holds no thread: it waits in the store object's local line and then for the store's
// notification (on stores with native asynchronous waits: see `Capabilities::async_waits`;
// others wake it by its backoff timer). Blocking round trips of stores without native
// asynchronous calls run on a small dlock worker pool. Cancel with the Context's stop token or
// the returned handle. The blocking API runs the same waiting loop (one request path).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "dlock/export.hpp"
#include "dlock/lock_info.hpp"
#include "dlock/store.hpp"

namespace dlock {

namespace detail {
class AsyncAcquire;
}

/// A started asynchronous operation. Copyable; dropping it does not cancel the operation.
class DLOCK_API AsyncHandle {
 public:
  AsyncHandle() = default;
  /// Ends the operation soon with `errc::cancelled` (no-op once it completed).
  void cancel() const noexcept;

 private:
  friend struct detail::Access;
  std::shared_ptr<detail::AsyncAcquire> op_;
};

/// Called with the lease, or with an error (`Error::code()`: timeout, cancelled, ...).
using AcquireCallback = std::function<void(std::error_code, Lease)>;
/// Called with the lease, nothing (the lock was held), or an error.
using TryAcquireCallback = std::function<void(std::error_code, std::optional<Lease>)>;

/// `Store::acquire` without blocking: waits as `opts.wait` and `ctx` allow.
DLOCK_API AsyncHandle start_acquire(const Store& store, const Context& ctx, std::string key,
                                    const LockOptions& opts, AcquireCallback done);
/// `Store::try_acquire` without blocking: one attempt.
DLOCK_API AsyncHandle start_try_acquire(const Store& store, const Context& ctx, std::string key,
                                        const LockOptions& opts, TryAcquireCallback done);
/// `Lease::release` without blocking. The callback gets the release's result.
DLOCK_API void start_release(Lease lease, const Context& ctx,
                             std::function<void(ReleaseResult)> done);
/// `Lease::renew` without blocking (the operation keeps the grant's state alive, so `lease` may
/// go first: the renewal then finds it released). The callback gets the error (empty on
/// success).
DLOCK_API void start_renew(const Lease& lease, const Context& ctx, std::chrono::milliseconds ttl,
                           std::function<void(std::error_code)> done);
/// `Store::inspect` without blocking.
DLOCK_API void start_inspect(const Store& store, const Context& ctx, std::string key,
                             std::function<void(std::error_code, LockInfo)> done);

}  // namespace dlock
