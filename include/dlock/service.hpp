// dlock/service.hpp: LockService: one store plus default options.
//
// `with_lock` runs a function under a lock that is kept renewed while it runs and released
// when it returns or throws; the function may take the lease's loss `std::stop_token` (or the
// `const Lease&` itself) to stop early when the lock is lost. Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// How `LockService::auto_renew` ended.
enum class AutoRenewEnd {
  stopped,   ///< The caller's stop token was triggered (the lock is still held).
  released,  ///< The lock was released (`unlock`) meanwhile.
  lost,      ///< The lock was lost; its loss signal fired.
  deadline,  ///< The context's deadline passed or it was cancelled (the lock is still held).
};

/// A store plus default lock options.
class DLOCK_API LockService {
 public:
  /// Wraps `store`; `defaults` apply to every call of this service.
  explicit LockService(Store store, LockOptions defaults = {});

  /// Runs `fn` holding `key`: waits per the defaults and `ctx`, auto-renews while `fn` runs
  /// (whatever the defaults say), and releases when `fn` returns or throws (the exception
  /// propagates). `fn` may take no argument, a `std::stop_token` (stopped if the lock is
  /// lost) or a `const Lease&`. While `fn` runs the key also counts as held by this service for
  /// `renew`, `unlock` and `auto_renew`. Returns what `fn` returns. Throws `Error` like
  /// `Store::acquire` when the lock cannot be taken.
  template <class F>
  decltype(auto) with_lock(const Context& ctx, std::string_view key, F&& fn) {
    Scope scope(*this, ctx, key, /*wait=*/true);
    return scope.run(std::forward<F>(fn));
  }

  /// Like `with_lock` but makes one attempt: runs `fn` and returns true if the lock was free,
  /// returns false without running `fn` if it was held.
  template <class F>
  bool try_with_lock(const Context& ctx, std::string_view key, F&& fn) {
    Scope scope(*this, ctx, key, /*wait=*/false);
    if (!scope.acquired()) return false;
    scope.run(std::forward<F>(fn));
    return true;
  }

  /// Whether anyone holds `key` (one round trip).
  bool is_locked(const Context& ctx, std::string_view key);
  /// Extends this service's hold of `key` to `ttl` (one round trip). Throws `not_held`.
  void renew(const Context& ctx, std::string_view key, std::chrono::milliseconds ttl);
  /// The lock's state: held, holder metadata, fencing token, remaining TTL (one round trip).
  LockInfo lock_info(const Context& ctx, std::string_view key);

  /// Keeps this service's hold of `key` renewed every `interval` (0 = TTL/3) until `stop` is
  /// requested, `ctx` ends, the lock is released or lost. Blocks the calling thread; the
  /// renewals themselves run on the process's renewal scheduler. On return the automatic
  /// renewal is switched off again unless it was on before. Throws `not_held` if this service
  /// does not hold `key`.
  AutoRenewEnd auto_renew(const Context& ctx, std::string_view key,
                          std::chrono::milliseconds interval, std::stop_token stop);

  /// The key-based calls with this service's defaults (see `Store`).
  bool try_lock(const Context& ctx, std::string_view key);
  /// Blocks per the defaults and `ctx`.
  void lock(const Context& ctx, std::string_view key);
  /// Releases this service's hold of `key`; throws `not_held`.
  void unlock(const Context& ctx, std::string_view key);

  /// The wrapped store.
  Store& store() noexcept { return store_; }
  /// The default options.
  const LockOptions& defaults() const noexcept { return defaults_; }
  /// Releases everything held through the store and closes it.
  void close();

 private:
  // A hold of one key for the duration of a with_lock call.
  class DLOCK_API Scope {
   public:
    Scope(LockService& svc, const Context& ctx, std::string_view key, bool wait);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    bool acquired() const noexcept { return static_cast<bool>(lease_); }
    const Lease& lease() const noexcept { return lease_; }
    template <class F>
    decltype(auto) run(F&& fn) {
      if constexpr (std::is_invocable_v<F, const Lease&>) {
        return std::invoke(std::forward<F>(fn), lease());
      } else if constexpr (std::is_invocable_v<F, std::stop_token>) {
        return std::invoke(std::forward<F>(fn), lease().lost_token());
      } else {
        return std::invoke(std::forward<F>(fn));
      }
    }

   private:
    LockService& svc_;
    std::string key_;
    Lease lease_;  // Our grant; the service's key table lends it for renew/unlock by key.
  };

  Store store_;
  LockOptions defaults_;
};

}  // namespace dlock
