#include "memory/memory_backend.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>

#include "core/async_wait.hpp"
#include "core/modes.hpp"
#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/url.hpp"
#include "dlock/error.hpp"
#include "dlock/memory.hpp"

namespace dlock::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class MemoryGrant;

// The shared table of one (possibly named) memory store.
struct Table {
  struct Holder {
    std::string token;
    LockMode mode;
    std::uint64_t fencing = 0;
    clock::time_point expires;
    std::string metadata;
    MemoryGrant* grant = nullptr;  // The holder's state, while it lives (for loss reports).
  };
  // One lock name: its holders, its waiters in arrival order (ticket numbers and modes), and
  // the last fencing token given (kept after release so tokens only grow) and a change
  // counter that waiters compare.
  struct Lock {
    std::vector<Holder> holders;
    std::map<std::uint64_t, LockMode> waiters;
    std::vector<std::shared_ptr<AsyncWait>> async_waits;  // Told at the next change.
    std::uint64_t fencing = 0, version = 0;
    // The semaphore's limit while it has holders or waiters (0: none).
    std::uint32_t limit() const {
      for (auto& h : holders) {
        if (h.mode.kind == LockMode::Kind::permits) return h.mode.limit;
      }
      for (auto& [t, m] : waiters) {
        if (m.kind == LockMode::Kind::permits) return m.limit;
      }
      return 0;
    }
    std::vector<LockMode> modes() const {
      std::vector<LockMode> out;
      for (auto& h : holders) out.push_back(h.mode);
      return out;
    }
  };
  std::mutex mu;
  std::condition_variable_any changed;
  std::map<std::string, Lock, std::less<>> locks;
  std::uint64_t next_ticket = 1;

  // Drops the expired holders of `lock`. Requires mu.
  void expire(Lock& lock, clock::time_point now) {
    auto dead = std::remove_if(lock.holders.begin(), lock.holders.end(),
                               [&](const Holder& h) { return h.expires <= now; });
    if (dead == lock.holders.end()) return;
    lock.holders.erase(dead, lock.holders.end());
    changed_locked(lock);
  }
  // `key`'s lock with its expired holders dropped. Requires mu.
  Lock& at(const std::string& key) {
    Lock& lock = locks[key];
    expire(lock, clock::now());
    return lock;
  }
  // The holder with `token` in `key`'s lock, or nullptr. Requires mu.
  Holder* held_by(const std::string& key, const std::string& token) {
    Lock& lock = at(key);
    for (auto& h : lock.holders) {
      if (h.token == token) return &h;
    }
    return nullptr;
  }
  void changed_locked(Lock& lock) {
    ++lock.version;
    changed.notify_all();
    for (auto& w : lock.async_waits) w->notify();  // Only queues work: safe under `mu`.
    lock.async_waits.clear();
  }
  // Forgets a lock name that holds nothing and nobody waits for, keeping its counter only if
  // it was ever granted (tokens must keep growing). Requires mu.
  void tidy(const std::string& key) {
    auto it = locks.find(key);
    if (it != locks.end() && it->second.holders.empty() && it->second.waiters.empty() &&
        it->second.fencing == 0) {
      locks.erase(it);
    }
  }
};

// One grant: its key and token, and a link from the table's holder so that a force release
// reaches the holder at once.
class MemoryGrant final : public GrantState {
 public:
  MemoryGrant(std::shared_ptr<Table> t, std::string key, std::string token)
      : t(std::move(t)), key(std::move(key)), token(std::move(token)) {}
  ~MemoryGrant() override {
    std::lock_guard lk(t->mu);
    auto it = t->locks.find(key);
    if (it == t->locks.end()) return;
    for (auto& h : it->second.holders) {
      if (h.grant == this) h.grant = nullptr;
    }
  }
  const std::shared_ptr<Table> t;
  const std::string key, token;
};

milliseconds remaining(clock::time_point expires, clock::time_point now) {
  return std::chrono::ceil<milliseconds>(expires - now);
}

Backend::Inspection inspection_of(const std::string& key, const Table::Lock& lock,
                                  clock::time_point now) {
  Backend::Inspection r{key, {}, lock.waiters.size()};
  for (auto& h : lock.holders) {
    r.holders.push_back({h.mode, h.fencing, remaining(h.expires, now), h.metadata});
  }
  return r;
}

class MemorySession final : public AcquireSession {
 public:
  MemorySession(std::shared_ptr<Table> t, const AcquireRequest& r) : t_(std::move(t)), req_(r) {}
  ~MemorySession() override { stop_waiting(); }

  Attempt attempt(const Context&) override {
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    Table::Lock& lock = t_->at(req_.key);
    seen_ = lock.version;
    if (auto conflict = limit_conflict(req_.mode, lock.limit())) {
      throw Error(errc::invalid_argument, "memory", req_.key, "acquire", *conflict);
    }
    // Served in arrival order across modes: only the first waiter (or, with nobody waiting, a
    // newcomer) may join the holders.
    const bool first = lock.waiters.empty() || lock.waiters.begin()->first == ticket_;
    if (!first || !compatible(req_.mode, lock.modes())) {
      holder_expires_ = clock::time_point::max();
      for (auto& h : lock.holders) holder_expires_ = std::min(holder_expires_, h.expires);
      if (req_.waits && ticket_ == 0) {
        ticket_ = t_->next_ticket++;
        lock.waiters.emplace(ticket_, req_.mode);
      }
      if (lock.holders.empty()) return Attempt::lost();
      return Attempt::lost(remaining(holder_expires_, now));
    }
    stop_waiting_locked();
    auto fencing = ++lock.fencing;
    auto grant = std::make_unique<MemoryGrant>(t_, req_.key, req_.token);
    lock.holders.push_back(
        {req_.token, req_.mode, fencing, now + req_.ttl, req_.metadata, grant.get()});
    t_->changed_locked(lock);  // The next waiter may fit too (another reader).
    return Attempt::won(std::move(grant), fencing);
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    std::unique_lock lk(t_->mu);
    // Wake at the first holder's expiry too: expiry is lazy, nobody else announces it.
    auto limit = std::min({until, ctx.deadline(), holder_expires_});
    return t_->changed.wait_until(lk, ctx.stop_token(), limit,
                                  [&] { return t_->locks[req_.key].version != seen_; });
  }

  bool async_wait(const Context& ctx, clock::time_point until, WaitDone done) override {
    auto w = AsyncWait::start(ctx, std::min(until, holder_expires_), std::move(done));
    std::lock_guard lk(t_->mu);
    Table::Lock& lock = t_->locks[req_.key];
    if (lock.version != seen_) {
      w->notify();  // Changed since the attempt.
      return true;
    }
    std::erase_if(lock.async_waits, [](auto& x) { return x->completed(); });
    lock.async_waits.push_back(std::move(w));
    return true;
  }

  void abandon() noexcept override { stop_waiting(); }

 private:
  void stop_waiting() noexcept {
    std::lock_guard lk(t_->mu);
    stop_waiting_locked();
  }
  void stop_waiting_locked() noexcept {
    if (ticket_ == 0) return;
    auto& lock = t_->locks[req_.key];
    lock.waiters.erase(ticket_);
    ticket_ = 0;
    t_->changed_locked(lock);  // Whoever waited behind us may go now.
    t_->tidy(req_.key);
  }

  std::shared_ptr<Table> t_;
  AcquireRequest req_;
  std::uint64_t seen_ = 0, ticket_ = 0;
  clock::time_point holder_expires_ = clock::time_point::max();
};

// A lock's changes, from its change counter.
class MemoryChangeWatch final : public Backend::ChangeWatch {
 public:
  MemoryChangeWatch(std::shared_ptr<Table> t, std::string key)
      : t_(std::move(t)), key_(std::move(key)) {
    std::lock_guard lk(t_->mu);
    seen_ = t_->locks[key_].version;
  }
  ~MemoryChangeWatch() override {
    std::lock_guard lk(t_->mu);
    t_->tidy(key_);
  }
  bool wait(const Context& ctx, clock::time_point until) override {
    std::unique_lock lk(t_->mu);
    const bool changed =
        t_->changed.wait_until(lk, ctx.stop_token(), std::min(until, ctx.deadline()),
                               [&] { return t_->locks[key_].version != seen_; });
    seen_ = t_->locks[key_].version;
    return changed;
  }

 private:
  std::shared_ptr<Table> t_;
  std::string key_;
  std::uint64_t seen_ = 0;
};

class MemoryBackend final : public Backend {
 public:
  explicit MemoryBackend(std::shared_ptr<Table> t) : t_(std::move(t)) {}

  std::string_view scheme() const override { return "memory"; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.fifo = true;
    c.binary_keys = true;
    c.min_ttl = milliseconds(1);
    c.shared_mode = true;
    c.permits_mode = true;
    c.downgrades = true;
    // Renewals are in-process calls: running due ones together on one scheduler worker costs
    // nothing, and keeps the core's batch path exercised on the store every test runs.
    c.extends_in_batches = true;
    c.async_waits = true;
    c.watches = true;
    c.proclaims = true;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    return std::make_unique<MemorySession>(t_, req);
  }

  GrantResult release(const Context&, GrantState& grant) noexcept override {
    auto& g = static_cast<MemoryGrant&>(grant);
    std::lock_guard lk(t_->mu);
    Table::Lock& lock = t_->at(g.key);
    auto it = std::find_if(lock.holders.begin(), lock.holders.end(),
                           [&](const Table::Holder& h) { return h.token == g.token; });
    if (it == lock.holders.end()) return GrantResult::not_held();
    lock.holders.erase(it);
    t_->changed_locked(lock);
    return GrantResult::held();
  }

  GrantResult extend(const Context&, GrantState& grant, milliseconds ttl) noexcept override {
    auto& g = static_cast<MemoryGrant&>(grant);
    std::lock_guard lk(t_->mu);
    auto* h = t_->held_by(g.key, g.token);
    if (!h) return GrantResult::not_held();
    h->expires = clock::now() + ttl;
    return GrantResult::held();
  }

  GrantResult downgrade(const Context&, GrantState& grant) noexcept override {
    auto& g = static_cast<MemoryGrant&>(grant);
    std::lock_guard lk(t_->mu);
    auto* h = t_->held_by(g.key, g.token);
    if (!h) return GrantResult::not_held();
    h->mode = LockMode::shared();
    t_->changed_locked(t_->locks[g.key]);  // Waiting readers may join now.
    return GrantResult::held();
  }

  GrantResult set_metadata(const Context&, GrantState& grant,
                           const std::string& metadata) noexcept override {
    auto& g = static_cast<MemoryGrant&>(grant);
    std::lock_guard lk(t_->mu);
    auto* h = t_->held_by(g.key, g.token);
    if (!h) return GrantResult::not_held();
    h->metadata = metadata;
    t_->changed_locked(t_->locks[g.key]);
    return GrantResult::held();
  }

  std::unique_ptr<ChangeWatch> watch_changes(const std::string& key) override {
    return std::make_unique<MemoryChangeWatch>(t_, key);
  }

  Inspection inspect(const Context&, const std::string& key) override {
    std::lock_guard lk(t_->mu);
    auto r = inspection_of(key, t_->at(key), clock::now());
    t_->tidy(key);
    return r;
  }

  std::vector<Inspection> list(const Context&, const std::string& prefix) override {
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    std::vector<Inspection> out;
    for (auto it = t_->locks.lower_bound(prefix);
         it != t_->locks.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      t_->expire(it->second, now);
      if (!it->second.holders.empty()) out.push_back(inspection_of(it->first, it->second, now));
    }
    return out;
  }

  bool force_release(const Context&, const std::string& key) override {
    std::lock_guard lk(t_->mu);
    Table::Lock& lock = t_->at(key);
    if (lock.holders.empty()) return false;
    for (auto& h : lock.holders) {
      if (h.grant) h.grant->report_lost();  // The holders learn at once.
    }
    lock.holders.clear();
    t_->changed_locked(lock);
    return true;
  }

  void close() noexcept override {}

 private:
  std::shared_ptr<Table> t_;
};

std::shared_ptr<Table> table_for(const std::string& name) {
  if (name.empty()) return std::make_shared<Table>();
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Table>> named;
  std::lock_guard lk(mu);
  auto& w = named[name];
  auto t = w.lock();
  if (!t) {
    t = std::make_shared<Table>();
    w = t;
  }
  return t;
}

}  // namespace

std::shared_ptr<Backend> make_memory_backend(const std::string& name) {
  return std::make_shared<MemoryBackend>(table_for(name));
}

void add_memory_schemes(SchemeTable& table) {
  table["memory"] = [](const std::string& url, const Context&) {
    auto u = parse_url(url, 0);
    check_query_keys(u, {});
    if (!u.path.empty() && u.path != "/") {
      throw Error(errc::invalid_argument, "memory", "", "parse url", "memory://NAME takes no path");
    }
    return make_memory_backend(u.authority);
  };
}

}  // namespace dlock::detail

namespace dlock {

Store open(const MemoryConfig& config) {
  return detail::make_store(detail::make_memory_backend(config.name), "memory://" + config.name);
}

}  // namespace dlock
