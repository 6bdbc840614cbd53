#include "dlock/shared_mutex.hpp"

namespace dlock {

SharedMutex::SharedMutex(Store store, std::string key, LockOptions opts)
    : store_(std::move(store)), key_(std::move(key)), opts_(std::move(opts)) {
  opts_.auto_renew = true;
  opts_.reentrant = false;
}

SharedMutex::~SharedMutex() {
  Lease writer;
  std::map<std::thread::id, Lease> readers;
  {
    std::lock_guard lk(mu_);
    writer = std::move(writer_);
    readers.swap(readers_);
  }
  // Destroying them releases them.
}

void SharedMutex::check_no_upgrade(bool shared) const {
  std::lock_guard lk(mu_);
  const auto me = std::this_thread::get_id();
  auto it = readers_.find(me);
  if (!shared && it != readers_.end() && it->second.held()) {
    throw Error(errc::would_deadlock, std::string(store_.scheme()), key_, "lock",
                "this thread holds the read side: release it first (an upgrade would wait "
                "for itself)");
  }
  if (shared && it != readers_.end() && it->second.held()) {
    throw Error(errc::would_deadlock, std::string(store_.scheme()), key_, "lock_shared",
                "this thread holds the read side already");
  }
}

bool SharedMutex::take(const Context& ctx, WaitPolicy wait, bool shared) {
  check_no_upgrade(shared);
  LockOptions o = opts_;
  o.wait = wait;
  o.mode = shared ? LockMode::shared() : LockMode::exclusive();
  std::optional<Lease> got;
  if (wait.mode == WaitPolicy::Mode::no_wait) {
    got = store_.try_acquire(ctx, key_, o);
    if (!got) return false;
  } else {
    got = store_.acquire(ctx, key_, o);
  }
  Lease stale;  // A grant that expired unreleased; released below, outside the lock.
  std::lock_guard lk(mu_);
  Lease& slot = shared ? readers_[std::this_thread::get_id()] : writer_;
  stale = std::move(slot);
  slot = std::move(*got);
  return true;
}

void SharedMutex::lock() { take(Context{}, WaitPolicy::forever(), false); }

bool SharedMutex::try_lock() noexcept {
  try {
    return take(Context{}, WaitPolicy::none(), false);
  } catch (...) {
    return false;
  }
}

void SharedMutex::unlock() noexcept {
  Lease l;
  {
    std::lock_guard lk(mu_);
    l = std::move(writer_);
  }
  l.release();
}

void SharedMutex::lock_shared() { take(Context{}, WaitPolicy::forever(), true); }

bool SharedMutex::try_lock_shared() noexcept {
  try {
    return take(Context{}, WaitPolicy::none(), true);
  } catch (...) {
    return false;
  }
}

void SharedMutex::unlock_shared() noexcept {
  Lease l;
  {
    std::lock_guard lk(mu_);
    auto it = readers_.find(std::this_thread::get_id());
    if (it == readers_.end()) return;
    l = std::move(it->second);
    readers_.erase(it);
  }
  l.release();
}

bool SharedMutex::try_until(std::chrono::steady_clock::time_point deadline, bool shared) noexcept {
  try {
    return take(Context::with_deadline(deadline), WaitPolicy::forever(), shared);
  } catch (...) {
    return false;
  }
}

void SharedMutex::downgrade() {
  std::unique_lock lk(mu_);
  if (!writer_.held()) {
    throw Error(errc::not_held, std::string(store_.scheme()), key_, "downgrade",
                "the write side is not held");
  }
  Lease w = std::move(writer_);
  lk.unlock();
  try {
    w.downgrade();
  } catch (...) {
    lk.lock();
    writer_ = std::move(w);  // Still the write grant (or lost): the caller decides.
    throw;
  }
  lk.lock();
  readers_[std::this_thread::get_id()] = std::move(w);
}

const Lease* SharedMutex::mine() const {
  auto it = readers_.find(std::this_thread::get_id());
  if (it != readers_.end()) return &it->second;
  return &writer_;
}

std::uint64_t SharedMutex::fencing_token() const {
  std::lock_guard lk(mu_);
  return mine()->fencing_token();
}

std::stop_token SharedMutex::lost_token() const {
  std::lock_guard lk(mu_);
  return mine()->lost_token();
}

}  // namespace dlock
