#include "dlock/store.hpp"

#include "core/store_core.hpp"

namespace dlock {

detail::StoreCore& Store::live(std::string_view key, std::string_view step) const {
  if (!core_)
    throw Error(errc::closed, "", std::string(key), std::string(step), "store not opened");
  core_->check_open(key, step);
  return *core_;
}

std::string_view Store::scheme() const { return core_ ? core_->scheme() : std::string_view{}; }
std::string Store::url() const { return core_ ? core_->url() : std::string{}; }
Capabilities Store::capabilities() const { return live("", "capabilities").capabilities(); }

Lease Store::acquire(const Context& ctx, std::string_view key, const LockOptions& opts) {
  auto r = live(key, "acquire").acquire(ctx, key, opts, false);
  if (!r) {
    throw Error(errc::timeout, std::string(scheme()), std::string(key), "acquire",
                "held by another owner (no-wait policy)");
  }
  return std::move(*r);
}

std::optional<Lease> Store::try_acquire(const Context& ctx, std::string_view key,
                                        const LockOptions& opts) {
  return live(key, "try_acquire").acquire(ctx, key, opts, true);
}

MultiLease Store::acquire_all(const Context& ctx, std::vector<std::string> keys,
                              const LockOptions& opts) {
  return live("", "acquire_all").acquire_all(ctx, std::move(keys), opts);
}

LockInfo Store::inspect(const Context& ctx, std::string_view key) {
  return live(key, "inspect").inspect(ctx, key);
}

bool Store::is_locked(const Context& ctx, std::string_view key) {
  return live(key, "is_locked").inspect(ctx, key).held;
}

std::vector<LockInfo> Store::list(const Context& ctx, std::string_view prefix) {
  return live(prefix, "list").list(ctx, prefix);
}

bool Store::force_release(const Context& ctx, std::string_view key) {
  return live(key, "force_release").force_release(ctx, key);
}

bool Store::try_lock(const Context& ctx, std::string_view key, const LockOptions& opts) {
  auto& c = live(key, "try_lock");
  auto lease = c.acquire(ctx, key, opts, true);
  if (!lease) return false;
  c.hold(std::move(*lease));
  return true;
}

void Store::lock(const Context& ctx, std::string_view key, const LockOptions& opts) {
  auto& c = live(key, "lock");
  auto lease = c.acquire(ctx, key, opts, false);
  if (!lease) {
    throw Error(errc::timeout, std::string(scheme()), std::string(key), "lock",
                "held by another owner (no-wait policy)");
  }
  c.hold(std::move(*lease));
}

void Store::unlock(const Context& ctx, std::string_view key) {
  auto& c = live(key, "unlock");
  auto hold = c.take(key);
  if (!hold.state) {
    throw Error(errc::not_held, std::string(scheme()), std::string(key), "unlock",
                "this store object does not hold the key");
  }
  auto r = hold.state->release(ctx);
  if (r.status == ReleaseStatus::not_held || r.status == ReleaseStatus::already_released) {
    throw Error(errc::not_held, std::string(scheme()), std::string(key), "unlock",
                "the lock had expired or was taken over");
  }
  if (r.status == ReleaseStatus::failed) {
    throw Error(r.error, std::string(scheme()), std::string(key), "unlock");
  }
}

void Store::renew(const Context& ctx, std::string_view key, std::chrono::milliseconds ttl) {
  auto& c = live(key, "renew");
  auto s = c.find(key);
  if (!s) {
    throw Error(errc::not_held, std::string(scheme()), std::string(key), "renew",
                "this store object does not hold the key");
  }
  s->renew(ctx, ttl);
}

bool Store::holds(std::string_view key) const {
  if (!core_) return false;
  auto s = core_->find(key);
  return s && s->held();
}

std::uint64_t Store::fencing_token(std::string_view key) const {
  auto s = live(key, "fencing_token").find(key);
  if (!s) {
    throw Error(errc::not_held, std::string(scheme()), std::string(key), "fencing_token",
                "this store object does not hold the key");
  }
  return s->fencing_token();
}

void Store::close() {
  if (core_) core_->close();
}

bool Store::closed() const { return !core_ || core_->closed(); }

Metrics Store::metrics() const { return core_ ? core_->shared()->stats.snapshot() : Metrics{}; }

}  // namespace dlock
