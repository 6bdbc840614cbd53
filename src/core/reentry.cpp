#include "core/reentry.hpp"

#include <sstream>
#include <thread>

#include "dlock/error.hpp"

namespace dlock::detail {

Reentry::~Reentry() {
  auto t = table.lock();
  if (!t) return;
  std::lock_guard lk(t->mu);
  auto it = t->grants.find({key, owner});
  if (it != t->grants.end() && it->second.expired()) t->grants.erase(it);
}

bool Reentry::leave() noexcept {
  auto t = table.lock();
  if (!t) return --shares == 0;
  std::lock_guard lk(t->mu);
  return --shares == 0;
}

std::shared_ptr<Reentry> ReentryTable::join(const std::string& key, const std::string& owner,
                                            const LockMode& mode) {
  std::lock_guard lk(mu);
  auto it = grants.find({key, owner});
  if (it == grants.end()) return nullptr;
  auto r = it->second.lock();
  if (!r || r->shares == 0 || !r->state->held()) return nullptr;
  const LockMode held = r->state->mode();
  // An exclusive grant covers every mode; otherwise the same mode only. A reader asking to
  // write would wait for itself.
  if (held.kind != LockMode::Kind::exclusive && !(held == mode)) {
    throw Error(errc::would_deadlock, r->state->scheme(), key, "acquire",
                "the owner holds this lock as " + std::string(to_string(held.kind)) +
                    " and asks for " + std::string(to_string(mode.kind)));
  }
  ++r->shares;
  return r;
}

void ReentryTable::add(const std::shared_ptr<Reentry>& r) {
  std::lock_guard lk(mu);
  grants[{r->key, r->owner}] = r;
}

std::string thread_owner() {
  std::ostringstream s;
  s << "thread:" << std::this_thread::get_id();
  return s.str();
}

}  // namespace dlock::detail
