// dlock/manager.hpp: LockManager, several named lock services (e.g. "redis", "etcd").
//
// Offers the service operations by name; an unknown name is `Error(errc::not_found)`, a
// duplicate registration `Error(errc::already_exists)`. Thread-safe. `close()` closes every
// service (releasing all their locks); later calls throw `errc::closed`.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dlock/export.hpp"
#include "dlock/service.hpp"

namespace dlock {

/// A registry of named lock services.
class DLOCK_API LockManager {
 public:
  LockManager() = default;
  LockManager(const LockManager&) = delete;
  LockManager& operator=(const LockManager&) = delete;
  /// Closes every service.
  ~LockManager();

  /// Registers `service` under `name`. Throws `already_exists`, `invalid_argument` (empty
  /// name or null service), `closed`.
  void register_service(const std::string& name, std::shared_ptr<LockService> service);
  /// The service registered under `name`. Throws `not_found`, `closed`.
  std::shared_ptr<LockService> service(const std::string& name) const;
  /// The registered names, sorted.
  std::vector<std::string> names() const;

  /// `LockService::with_lock` on the named service.
  template <class F>
  decltype(auto) with_lock(const std::string& name, const Context& ctx, std::string_view key,
                           F&& fn) {
    return service(name)->with_lock(ctx, key, std::forward<F>(fn));
  }
  /// `LockService::try_with_lock` on the named service.
  template <class F>
  bool try_with_lock(const std::string& name, const Context& ctx, std::string_view key, F&& fn) {
    return service(name)->try_with_lock(ctx, key, std::forward<F>(fn));
  }
  /// `LockService::is_locked` on the named service.
  bool is_locked(const std::string& name, const Context& ctx, std::string_view key);
  /// `LockService::renew` on the named service.
  void renew(const std::string& name, const Context& ctx, std::string_view key,
             std::chrono::milliseconds ttl);
  /// `LockService::lock_info` on the named service.
  LockInfo lock_info(const std::string& name, const Context& ctx, std::string_view key);

  /// Closes every service and forgets them. Idempotent.
  void close();

 private:
  mutable std::mutex mu_;
  bool closed_ = false;
  std::map<std::string, std::shared_ptr<LockService>> services_;
};

}  // namespace dlock
