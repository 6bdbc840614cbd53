// dlock/store.hpp: a connection to one lock store, and its key-based lock interface.
//
// `dlock::open(url)` returns a `Store`. A `Store` is a cheap, copyable handle: copies share
// one connection, one set of metrics and one table of key-based holds. It is thread-safe.
//
// Two ways to lock:
//  - handles: `acquire()` / `try_acquire()` return a `Lease` you hold (RAII);
//  - keys: `try_lock`, `lock`, `unlock`, `renew`, `is_locked`. The
//    store object keeps the `Lease` of each key it locked. Locking a key that this same object
//    already holds waits for it like any other holder (the store excludes it), it never
//    overwrites the first holder's token: `try_lock` returns false, `lock` waits until
//    `unlock(key)` (from any thread) or its deadline.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/error.hpp"
#include "dlock/export.hpp"
#include "dlock/lease.hpp"
#include "dlock/lock_info.hpp"
#include "dlock/metrics.hpp"
#include "dlock/multi_lease.hpp"
#include "dlock/options.hpp"
#include "dlock/watch.hpp"

namespace dlock {

namespace detail {
class StoreCore;
struct Access;
}  // namespace detail

/// What a store can do; stores differ.
struct Capabilities {
  /// Waiters are woken by the store's change notifications (otherwise they back off).
  bool notifies = false;
  /// Waiters are served in arrival order, across modes: once an acquisition waits, later ones
  /// queue behind it (so new readers never starve a waiting writer).
  bool fifo = false;
  /// A crashed holder's lock is freed at once (not only after its TTL).
  bool frees_on_crash = false;
  /// Keys may hold any byte (else NUL and control bytes are rejected).
  bool binary_keys = true;
  /// Longest key in bytes.
  std::size_t max_key_bytes = kMaxKeyBytes;
  /// Smallest TTL the store honours; shorter TTLs are rounded up to it.
  std::chrono::milliseconds min_ttl{1};
  /// The grant survives a restart of the store.
  bool durable = false;
  /// Offers `LockMode::shared` (read-write locks).
  bool shared_mode = false;
  /// Offers `LockMode::permits` (counting semaphores).
  bool permits_mode = false;
  /// An exclusive grant can become shared without a gap (`Lease::downgrade`).
  bool downgrades = false;
  /// In the asynchronous API (dlock/async.hpp), a waiting acquisition is woken by the store's
  /// notification and holds no thread; otherwise its backoff timer wakes it.
  bool async_waits = false;
  /// `Store::watch` (and `Election::observe`) learn of changes from the store's notifications;
  /// otherwise they read the lock periodically.
  bool watches = false;
  /// A holder can change the value it published (`Leadership::proclaim`).
  bool proclaims = false;
  /// Renewals that fall due together are sent as one batch (pipelined), so the renewal
  /// scheduler gathers them instead of sending one per worker thread.
  bool extends_in_batches = false;

  /// Whether the store offers grants of `kind`.
  constexpr bool supports(LockMode::Kind kind) const noexcept {
    return kind == LockMode::Kind::exclusive || (kind == LockMode::Kind::shared && shared_mode) ||
           (kind == LockMode::Kind::permits && permits_mode);
  }
};

/// A handle to one open lock store. Obtain with `dlock::open`.
class DLOCK_API Store {
 public:
  /// An unopened handle; every call throws `errc::closed`.
  Store() = default;

  /// The store's URL scheme, e.g. "memory", "redis", "etcd".
  std::string_view scheme() const;
  /// The URL it was opened with, with any password replaced by "***".
  std::string url() const;
  /// What the store can do.
  Capabilities capabilities() const;

  /// Acquires `key`, waiting as `opts.wait` and `ctx` allow. Throws `Error`: `timeout`
  /// (wait policy or context deadline), `cancelled`, `invalid_argument`, `unavailable`,
  /// `auth_failed`, `closed`. Costs one round trip per attempt; waiting uses the store's
  /// notifications where it has them.
  Lease acquire(const Context& ctx, std::string_view key, const LockOptions& opts = {});

  /// One acquire attempt, never waits. Returns an empty optional when someone else holds
  /// `key`. Throws `Error` on store or argument errors.
  std::optional<Lease> try_acquire(const Context& ctx, std::string_view key,
                                   const LockOptions& opts = {});

  /// Acquires every key of `keys` or none: in one global order (sorted, duplicates dropped),
  /// each waiting as `opts.wait` allows, all within one deadline; when one cannot be had, the
  /// ones taken are released and the error is thrown (as `acquire`). The group has one loss
  /// signal. Costs one acquisition per key.
  MultiLease acquire_all(const Context& ctx, std::vector<std::string> keys,
                         const LockOptions& opts = {});

  /// Reads the lock's state: its holders (mode, fencing token, TTL, metadata) and, where the
  /// store records them, its waiters (one round trip; a few on stores that keep the TTL apart).
  LockInfo inspect(const Context& ctx, std::string_view key);
  /// Whether anyone holds `key` (one round trip).
  bool is_locked(const Context& ctx, std::string_view key);
  /// Calls `cb` with the lock's current state (`LockEvent::Kind::snapshot`), then with each
  /// change in order, until `cb` returns false or `ctx` ends (deadline or stop: then it returns
  /// normally). Blocks the calling thread. Changes come from the store's notifications where it
  /// has them (`Capabilities::watches`), else from reading the lock every `poll`. When the store
  /// is unreachable it retries until `ctx` ends and, once back, reports a `snapshot` so nothing
  /// of the current state is missed (intermediate changes during an outage may be). Each event
  /// is the difference between two reads of the lock, so changes closer together than one read
  /// (an acquisition and release within a round trip) arrive as their net result. Throws
  /// `Error` for bad arguments or a closed store.
  void watch(const Context& ctx, std::string_view key,
             const std::function<bool(const LockEvent&)>& cb,
             std::chrono::milliseconds poll = std::chrono::milliseconds(250));

  /// The locks currently held whose key starts with `prefix` (may cost several round trips;
  /// not atomic).
  std::vector<LockInfo> list(const Context& ctx, std::string_view prefix = {});
  /// Operator's override: deletes the lock whoever holds it (every holder of a shared lock);
  /// the holder's loss signal fires at its next renewal. Returns whether a grant was deleted.
  bool force_release(const Context& ctx, std::string_view key);

  // ---- The key-based interface (a thin layer over leases held by this object) ----

  /// One attempt to lock `key` for this object; false if it is held (also by this object).
  bool try_lock(const Context& ctx, std::string_view key, const LockOptions& opts = {});
  /// Locks `key` for this object, waiting as `opts.wait` and `ctx` allow; throws like
  /// `acquire()`.
  void lock(const Context& ctx, std::string_view key, const LockOptions& opts = {});
  /// Releases `key` held by this object. Throws `Error(errc::not_held)` when this object does
  /// not hold it (never locked, already unlocked, or it expired: the lock is then dropped).
  void unlock(const Context& ctx, std::string_view key);
  /// Extends `key` held by this object to `ttl`. Throws `not_held` like `unlock`.
  void renew(const Context& ctx, std::string_view key, std::chrono::milliseconds ttl);
  /// Whether this object holds `key` through the key-based calls (no round trip; a hold
  /// whose validity ended counts as not held).
  bool holds(std::string_view key) const;
  /// The fencing token of this object's hold of `key`; throws `not_held` like `unlock`.
  std::uint64_t fencing_token(std::string_view key) const;

  /// Releases every lock held through this store (key-based and leases alike: their loss
  /// signals do not fire) and closes the connection. Later calls throw `errc::closed`.
  /// Idempotent.
  void close();
  /// Whether `close()` was called.
  bool closed() const;

  /// The store's counters.
  Metrics metrics() const;

 private:
  friend struct detail::Access;
  explicit Store(std::shared_ptr<detail::StoreCore> core) : core_(std::move(core)) {}
  detail::StoreCore& live(std::string_view key, std::string_view step) const;
  std::shared_ptr<detail::StoreCore> core_;
};

/// Opens a store from a URL. Schemes: `memory://[name]` (in-process; a named store is shared
/// by every `open` of the same name in the process), and those of the store libraries that
/// were built in (`file://`, `redis://`, `rediss://`, `etcd://`, `etcd+txn://`, ...). Throws
/// `Error`: `invalid_argument` for a malformed URL or unknown scheme, `unavailable` /
/// `auth_failed` when the store cannot be reached or refuses us (bounded by `ctx`).
DLOCK_API Store open(std::string_view url,
                     const Context& ctx = Context::with_timeout(std::chrono::seconds(10)));

/// The schemes `open` accepts in this build.
DLOCK_API std::vector<std::string> supported_schemes();

}  // namespace dlock
