#include "memory/memory_backend.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/url.hpp"
#include "dlock/error.hpp"
#include "dlock/memory.hpp"

namespace dlock::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The shared table of one (possibly named) memory store.
struct Table {
  struct Entry {
    std::string token;
    std::uint64_t fencing = 0;
    clock::time_point expires;
    std::string metadata;
  };
  std::mutex mu;
  std::condition_variable_any changed;
  std::map<std::string, Entry, std::less<>> locks;
  // Per key: the last fencing token given (kept after release so tokens only grow) and a
  // change counter that waiters compare.
  struct Counters {
    std::uint64_t fencing = 0, version = 0;
  };
  std::unordered_map<std::string, Counters> counters;
  std::uint64_t& version(const std::string& key) { return counters[key].version; }

  // Drops `key` if its grant expired. Requires mu.
  void expire(const std::string& key, clock::time_point now) {
    auto it = locks.find(key);
    if (it != locks.end() && it->second.expires <= now) {
      locks.erase(it);
      ++version(key);
    }
  }
  void expire_all(clock::time_point now) {
    for (auto it = locks.begin(); it != locks.end();) {
      if (it->second.expires <= now) {
        ++version(it->first);
        it = locks.erase(it);
      } else {
        ++it;
      }
    }
  }
};

milliseconds remaining(clock::time_point expires, clock::time_point now) {
  return std::chrono::ceil<milliseconds>(expires - now);
}

class MemorySession final : public AcquireSession {
 public:
  MemorySession(std::shared_ptr<Table> t, const AcquireRequest& r) : t_(std::move(t)), req_(r) {}

  Attempt attempt(const Context&) override {
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    t_->expire(req_.key, now);
    seen_ = t_->version(req_.key);
    auto it = t_->locks.find(req_.key);
    if (it != t_->locks.end()) {
      holder_expires_ = it->second.expires;
      return Attempt{false, 0, remaining(it->second.expires, now)};
    }
    auto fencing = ++t_->counters[req_.key].fencing;
    t_->locks.emplace(req_.key, Table::Entry{req_.token, fencing, now + req_.ttl, req_.metadata});
    ++t_->version(req_.key);
    return Attempt{true, fencing, {}};
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    std::unique_lock lk(t_->mu);
    // Wake at the holder's expiry too: expiry is lazy, nobody else announces it.
    auto limit = std::min({until, ctx.deadline(), holder_expires_});
    return t_->changed.wait_until(lk, ctx.stop_token(), limit,
                                  [&] { return t_->version(req_.key) != seen_; });
  }

 private:
  std::shared_ptr<Table> t_;
  AcquireRequest req_;
  std::uint64_t seen_ = 0;
  clock::time_point holder_expires_ = clock::time_point::max();
};

class MemoryBackend final : public Backend {
 public:
  explicit MemoryBackend(std::shared_ptr<Table> t) : t_(std::move(t)) {}

  std::string_view scheme() const override { return "memory"; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.binary_keys = true;
    c.min_ttl = milliseconds(1);
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    check_open();
    return std::make_unique<MemorySession>(t_, req);
  }

  bool release(const Context&, const std::string& key, const std::string& token) override {
    check_open();
    std::lock_guard lk(t_->mu);
    t_->expire(key, clock::now());
    auto it = t_->locks.find(key);
    if (it == t_->locks.end() || it->second.token != token) return false;
    t_->locks.erase(it);
    ++t_->version(key);
    t_->changed.notify_all();
    return true;
  }

  // Renewals are in-process calls: running due ones together on one scheduler worker costs
  // nothing, and keeps the core's batch path exercised on the store every test runs.
  bool extends_in_batches() const override { return true; }

  bool extend(const Context&, const std::string& key, const std::string& token,
              milliseconds ttl) override {
    check_open();
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    t_->expire(key, now);
    auto it = t_->locks.find(key);
    if (it == t_->locks.end() || it->second.token != token) return false;
    it->second.expires = now + ttl;
    return true;
  }

  Inspection inspect(const Context&, const std::string& key) override {
    check_open();
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    t_->expire(key, now);
    Inspection r;
    r.info.key = key;
    auto it = t_->locks.find(key);
    if (it == t_->locks.end()) return r;
    r.info.held = true;
    r.info.fencing_token = it->second.fencing;
    r.info.ttl_remaining = remaining(it->second.expires, now);
    r.metadata = it->second.metadata;
    return r;
  }

  std::vector<Inspection> list(const Context&, const std::string& prefix) override {
    check_open();
    std::lock_guard lk(t_->mu);
    auto now = clock::now();
    t_->expire_all(now);
    std::vector<Inspection> out;
    for (auto it = t_->locks.lower_bound(prefix);
         it != t_->locks.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      Inspection r;
      r.info.key = it->first;
      r.info.held = true;
      r.info.fencing_token = it->second.fencing;
      r.info.ttl_remaining = remaining(it->second.expires, now);
      r.metadata = it->second.metadata;
      out.push_back(std::move(r));
    }
    return out;
  }

  bool force_release(const Context&, const std::string& key) override {
    check_open();
    std::lock_guard lk(t_->mu);
    t_->expire(key, clock::now());
    bool erased = t_->locks.erase(key) > 0;
    if (erased) {
      ++t_->version(key);
      t_->changed.notify_all();
    }
    return erased;
  }

  void close() noexcept override { closed_ = true; }

 private:
  void check_open() const {
    if (closed_) throw Error(errc::closed, "memory", "", "call");
  }
  std::shared_ptr<Table> t_;
  std::atomic<bool> closed_{false};
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
  return Store(
      detail::make_store_core(detail::make_memory_backend(config.name), "memory://" + config.name));
}

}  // namespace dlock
