#include "dlock/service.hpp"

#include "core/access.hpp"
#include "core/lease_state.hpp"
#include "core/store_core.hpp"

namespace dlock {

LockService::LockService(Store store, LockOptions defaults)
    : store_(std::move(store)), defaults_(std::move(defaults)) {}

LockService::Scope::Scope(LockService& svc, const Context& ctx, std::string_view key, bool wait)
    : svc_(svc), key_(key) {
  LockOptions opts = svc.defaults_;
  opts.auto_renew = true;
  if (wait) {
    lease_ = svc.store_.acquire(ctx, key, opts);
  } else if (auto l = svc.store_.try_acquire(ctx, key, opts)) {
    lease_ = std::move(*l);
  } else {
    return;
  }
  detail::Access::core(svc.store_)->hold_borrowed(detail::Access::state(lease_));
}

LockService::Scope::~Scope() {
  if (!lease_) return;
  detail::Access::core(svc_.store_)->drop_hold(key_, detail::Access::state(lease_).get());
  lease_.release(Context::with_timeout(detail::kCleanupTimeout));
}

bool LockService::is_locked(const Context& ctx, std::string_view key) {
  return store_.is_locked(ctx, key);
}

void LockService::renew(const Context& ctx, std::string_view key, std::chrono::milliseconds ttl) {
  store_.renew(ctx, key, ttl);
}

LockInfo LockService::lock_info(const Context& ctx, std::string_view key) {
  return store_.inspect(ctx, key);
}

AutoRenewEnd LockService::auto_renew(const Context& ctx, std::string_view key,
                                     std::chrono::milliseconds interval, std::stop_token stop) {
  const auto& core = detail::Access::core(store_);
  auto state = core ? core->find(key) : nullptr;
  if (!state) {
    throw Error(errc::not_held, std::string(store_.scheme()), std::string(key), "auto_renew",
                "this service does not hold the key");
  }
  const auto before = state->auto_renew_setting();
  state->set_auto_renew(true, interval);
  bool ended = state->wait_ended(ctx, stop);
  if (ended) return state->lost() ? AutoRenewEnd::lost : AutoRenewEnd::released;
  state->set_auto_renew(before.first, before.second);
  return stop.stop_requested() ? AutoRenewEnd::stopped : AutoRenewEnd::deadline;
}

bool LockService::try_lock(const Context& ctx, std::string_view key) {
  return store_.try_lock(ctx, key, defaults_);
}

void LockService::lock(const Context& ctx, std::string_view key) {
  store_.lock(ctx, key, defaults_);
}

void LockService::unlock(const Context& ctx, std::string_view key) { store_.unlock(ctx, key); }

void LockService::close() { store_.close(); }

}  // namespace dlock
