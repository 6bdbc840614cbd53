#include "dlock/manager.hpp"

namespace dlock {

LockManager::~LockManager() { close(); }

void LockManager::register_service(const std::string& name, std::shared_ptr<LockService> service) {
  if (name.empty() || !service) {
    throw Error(errc::invalid_argument, "manager", "", "register_service",
                name.empty() ? "empty service name" : "null service");
  }
  std::lock_guard lk(mu_);
  if (closed_) throw Error(errc::closed, "manager", "", "register_service");
  if (!services_.emplace(name, std::move(service)).second) {
    throw Error(errc::already_exists, "manager", "", "register_service",
                "a service named '" + name + "' is already registered");
  }
}

std::shared_ptr<LockService> LockManager::service(const std::string& name) const {
  std::lock_guard lk(mu_);
  if (closed_) throw Error(errc::closed, "manager", "", "service");
  auto it = services_.find(name);
  if (it == services_.end()) {
    throw Error(errc::not_found, "manager", "", "service",
                "no service named '" + name + "' is registered");
  }
  return it->second;
}

std::vector<std::string> LockManager::names() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [n, s] : services_) out.push_back(n);
  return out;
}

bool LockManager::is_locked(const std::string& name, const Context& ctx, std::string_view key) {
  return service(name)->is_locked(ctx, key);
}

void LockManager::renew(const std::string& name, const Context& ctx, std::string_view key,
                        std::chrono::milliseconds ttl) {
  service(name)->renew(ctx, key, ttl);
}

LockInfo LockManager::lock_info(const std::string& name, const Context& ctx, std::string_view key) {
  return service(name)->lock_info(ctx, key);
}

void LockManager::close() {
  std::map<std::string, std::shared_ptr<LockService>> services;
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    services.swap(services_);
  }
  for (auto& [n, s] : services) s->close();
}

}  // namespace dlock
