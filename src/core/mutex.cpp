#include "dlock/mutex.hpp"

namespace dlock {

Mutex::Mutex(Store store, std::string key, LockOptions opts)
    : store_(std::move(store)), key_(std::move(key)), opts_(std::move(opts)) {
  opts_.auto_renew = true;
}

Mutex::~Mutex() { unlock(); }

void Mutex::adopt(Lease lease) {
  Lease stale;
  std::lock_guard lk(mu_);
  stale = std::move(lease_);  // Only non-empty if it expired unreleased; released below.
  lease_ = std::move(lease);
}

void Mutex::lock() {
  LockOptions o = opts_;
  o.wait = WaitPolicy::forever();
  adopt(store_.acquire(Context{}, key_, o));
}

bool Mutex::try_lock() noexcept {
  try {
    LockOptions o = opts_;
    o.wait = WaitPolicy::none();
    auto l = store_.try_acquire(Context{}, key_, o);
    if (!l) return false;
    adopt(std::move(*l));
    return true;
  } catch (...) {
    return false;
  }
}

bool Mutex::try_lock_steady(std::chrono::steady_clock::time_point deadline) noexcept {
  try {
    LockOptions o = opts_;
    o.wait = WaitPolicy::forever();
    adopt(store_.acquire(Context::with_deadline(deadline), key_, o));
    return true;
  } catch (...) {
    return false;
  }
}

void Mutex::unlock() noexcept {
  Lease l;
  {
    std::lock_guard lk(mu_);
    l = std::move(lease_);
  }
  l.release();
}

std::uint64_t Mutex::fencing_token() const {
  std::lock_guard lk(mu_);
  return lease_.fencing_token();
}

std::stop_token Mutex::lost_token() const {
  std::lock_guard lk(mu_);
  return lease_.lost_token();
}

}  // namespace dlock
