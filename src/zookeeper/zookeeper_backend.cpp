#include "zookeeper/zookeeper_backend.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <thread>

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "zookeeper/client.hpp"
#include "zookeeper/config.hpp"

namespace dlock::detail::zookeeper {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* const kScheme = "zk";
// kazoo's Lock and WriteLock name their contenders `<uuid hex>__lock__<seq>`, ReadLock
// `...__rlock__<seq>`; Curator's InterProcessMutex `_c_<uuid>-lock-<seq>`. dlock names its own
// `<token>__lock__<seq>` (exclusive: kazoo's write node) or `<token>__rlock__<seq>` (shared:
// kazoo's read node) and treats every child that ends in a 10-digit sequence as a contender.
const char* const kNodeName = "__lock__";
const char* const kReadNodeName = "__rlock__";
// The field of a node's data that records the grant's TTL (dlock's own nodes only).
const char* const kTtlField = "dlock_ttl_ms";

// A child that ends in a sequence number: its sequence, else -1.
long long sequence_of(const std::string& child) {
  if (child.size() < 10) return -1;
  long long v = 0;
  for (std::size_t i = child.size() - 10; i < child.size(); ++i) {
    const char c = child[i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// Whether a contender is a read node (`...__rlock__<seq>`). Every other contender is a write
// node: it blocks readers (kazoo's ReadLock counts only `__lock__`; dlock also counts foreign
// recipes' nodes, which is the safe side).
bool is_read(const std::string& child) {
  const std::size_t n = std::char_traits<char>::length(kReadNodeName);
  return child.size() >= n + 10 && child.compare(child.size() - 10 - n, n, kReadNodeName) == 0;
}

// The holders among contenders in sequence order: the first write node alone, else every read
// node ahead of the first write node.
std::size_t holder_count(const std::vector<std::string>& order) {
  if (order.empty()) return 0;
  if (!is_read(order.front())) return 1;
  std::size_t n = 0;
  while (n < order.size() && is_read(order[n])) ++n;
  return n;
}

// Contenders in sequence order.
std::vector<std::string> contenders(std::vector<std::string> children) {
  std::erase_if(children, [](const std::string& c) { return sequence_of(c) < 0; });
  std::sort(children.begin(), children.end(), [](const std::string& a, const std::string& b) {
    return sequence_of(a) < sequence_of(b);
  });
  return children;
}

// The node's data: the owner metadata (a JSON object) with the TTL added.
std::string node_data(const std::string& metadata, milliseconds ttl) {
  auto j = nlohmann::json::parse(metadata, nullptr, false);
  if (j.is_discarded() || !j.is_object()) j = nlohmann::json::object();
  j[kTtlField] = ttl.count();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A holder as read from its node: metadata without the TTL field, and the TTL left (from the
// node's last write by the server's clock) when the node records one.
Backend::Holder read_holder(const std::string& data, const NodeStat& st, bool shared) {
  Backend::Holder h;
  h.mode = shared ? LockMode::shared() : LockMode::exclusive();
  h.fencing_token = static_cast<std::uint64_t>(st.czxid);
  h.metadata = data;
  auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto it = j.find(kTtlField);
    if (it != j.end() && it->is_number_integer()) {
      const auto now = std::chrono::duration_cast<milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const long long left = st.mtime_ms + it->get<long long>() - now;
      h.ttl_remaining = milliseconds(std::max(0LL, left));
      j.erase(it);
      h.metadata = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return h;
}

class ZkBackend;

// One grant: its node, and its registration for the session's and the node's reports.
class ZkGrant final : public GrantState {
 public:
  ZkGrant(std::shared_ptr<ZkBackend> b, std::string key, std::string node, NodeStat st,
          std::uint64_t generation, clock::time_point deadline, std::string data);
  ~ZkGrant() override;

  const std::string key, node;
  const std::int64_t czxid;
  const std::uint64_t generation;
  std::string metadata;  // As given (without the TTL field).
  // Guarded by the backend's registry lock:
  std::int32_t version;
  clock::time_point deadline;
  bool ours = true;  // Until we delete the node ourselves (release, TTL): no loss report then.

 private:
  std::shared_ptr<ZkBackend> b_;
};

// What a waiting session waits for: its predecessor's watch.
struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  bool changed = false;
  void fire() {
    std::lock_guard lk(mu);
    changed = true;
    cv.notify_all();
  }
};

class ZkBackend final : public Backend, public std::enable_shared_from_this<ZkBackend> {
 public:
  explicit ZkBackend(const ZooKeeperConfig& cfg) : cfg_(cfg), client_(cfg) { hub_->backend = this; }
  ~ZkBackend() override { close(); }

  void open(const Context& ctx) {
    client_.set_events(SessionEvents{
        [this](std::uint64_t gen) { for_grants(gen, [](ZkGrant& g) { g.report_at_risk(); }); },
        [this](std::uint64_t gen) { for_grants(gen, [](ZkGrant& g) { g.report_recovered(); }); },
        [this](std::uint64_t gen) {
          for_grants(gen, [](ZkGrant& g) {
            if (!g.ours) return;
            g.ours = false;
            g.report_lost(make_error_code(errc::lock_lost));
          });
        }});
    client_.ensure(ctx, "", "connect");
    client_.create_parents(ctx, cfg_.root, NodeKind::persistent, "", "create root");
    // A read that the ACL of the root may refuse (auth_failed).
    std::vector<std::string> names;
    client_.children(ctx, cfg_.root, &names, "", "read root");
    reaper_ = std::thread([this] { reap(); });
  }

  std::string_view scheme() const override { return kScheme; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.fifo = true;  // Contenders are served in sequence order.
    // A crashed holder's node goes only when the server expires its session.
    c.frees_on_crash = false;
    c.binary_keys = false;
    c.min_ttl = milliseconds(1);
    c.durable = false;  // Not claimed: no test restarts the server under a held lock.
    // Read-write locks on kazoo's ReadLock/WriteLock layout. No downgrade: a node's name (which
    // says its mode) cannot change, and a new read node would queue behind waiting writers.
    c.shared_mode = true;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override;

  GrantResult release(const Context& ctx, GrantState& grant) noexcept override {
    auto& g = static_cast<ZkGrant&>(grant);
    return guarded([&] {
      bool expired = false;
      {
        std::lock_guard lk(mu_);
        g.ours = false;
        expired = clock::now() >= g.deadline;
      }
      const Rc rc = delete_node(ctx, g.key, g.node);
      return GrantResult::held_if(rc == Rc::ok && !expired);
    });
  }

  GrantResult extend(const Context& ctx, GrantState& grant, milliseconds ttl) noexcept override {
    auto& g = static_cast<ZkGrant&>(grant);
    return guarded([&] {
      std::int32_t version = 0;
      bool expired = false;
      {
        std::lock_guard lk(mu_);
        expired = clock::now() >= g.deadline || !g.ours;
        if (expired) g.ours = false;
        version = g.version;
      }
      if (expired) {
        // Its TTL passed: the node goes (if the reaper has not deleted it yet).
        delete_node(ctx, g.key, g.node);
        return GrantResult::not_held();
      }
      if (client_.generation() != g.generation) return GrantResult::not_held();
      // The version-checked write proves the node is still ours and records the new TTL
      // (from the server's clock). It fires the node's watch, which the reaper sets again.
      NodeStat st;
      const auto started = clock::now();
      const std::string data = node_data(g.metadata, ttl);
      Rc rc = client_.set(ctx, g.node, data, version, &st, g.key, "renew");
      if (rc == Rc::bad_version) {
        // An earlier renewal whose reply we did not wait for was applied: the node (its name is
        // ours alone) is still ours, at a newer version.
        NodeStat now;
        if (client_.exists(ctx, g.node, &now, nullptr, g.key, "renew") == Rc::ok &&
            now.czxid == g.czxid) {
          rc = client_.set(ctx, g.node, data, now.version, &st, g.key, "renew");
        }
      }
      if (rc != Rc::ok) return GrantResult::not_held();
      {
        std::lock_guard lk(mu_);
        g.version = st.version;
        g.deadline = started + ttl;
      }
      cv_.notify_all();
      return GrantResult::held();
    });
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    Inspection out{key, {}, std::nullopt};
    for (int tries = 0; tries < 5; ++tries) {
      std::vector<std::string> names;
      if (client_.children(ctx, dir(key), &names, key, "inspect") == Rc::no_node) {
        out.waiters = 0;
        return out;
      }
      auto c = contenders(std::move(names));
      if (c.empty()) {
        out.waiters = 0;
        return out;
      }
      const std::size_t n = holder_count(c);
      std::vector<Holder> holders;
      for (std::size_t i = 0; i < n; ++i) {
        std::string data;
        NodeStat st;
        if (client_.get(ctx, dir(key) + "/" + c[i], &data, &st, key, "inspect") != Rc::ok) break;
        holders.push_back(read_holder(data, st, is_read(c[i])));
      }
      if (holders.size() == n) {
        out.holders = std::move(holders);
        out.waiters = c.size() - n;
        return out;
      }
      // A holder left between the reads: read again.
    }
    return out;
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& prefix) override {
    std::vector<std::string> names;
    client_.children(ctx, cfg_.root, &names, prefix, "list");
    std::vector<std::string> keys;
    for (auto& n : names) {
      auto k = decode_key(n);
      if (k && k->rfind(prefix, 0) == 0) keys.push_back(*k);
    }
    std::sort(keys.begin(), keys.end());
    std::vector<Inspection> out;
    for (auto& k : keys) {
      auto i = inspect(ctx, k);
      if (!i.holders.empty()) out.push_back(std::move(i));
    }
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    std::vector<std::string> names;
    if (client_.children(ctx, dir(key), &names, key, "force_release") == Rc::no_node) return false;
    auto c = contenders(std::move(names));
    bool removed = false;
    for (std::size_t i = 0, n = holder_count(c); i < n; ++i) {
      if (client_.remove(ctx, dir(key) + "/" + c[i], -1, key, "force_release") == Rc::ok) {
        removed = true;
      }
    }
    return removed;
  }

  void close() noexcept override {
    if (closed_.exchange(true)) return;
    {
      std::lock_guard lk(hub_->mu);
      hub_->backend = nullptr;
    }
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    client_.close();
    if (reaper_.joinable()) reaper_.join();
  }

  // ---- for sessions and grants ----

  std::string dir(const std::string& key) const { return cfg_.root + "/" + encode_key(key); }
  Client& client() { return client_; }
  milliseconds session_timeout() const { return cfg_.session_timeout; }

  void add(ZkGrant* g) {
    {
      std::lock_guard lk(mu_);
      grants_.emplace(g->node, g);
    }
    cv_.notify_all();
  }
  void remove(ZkGrant* g) {
    std::lock_guard lk(mu_);
    auto it = grants_.find(g->node);
    if (it != grants_.end() && it->second == g) grants_.erase(it);
  }

  // Deletes `node` (any version: its name is ours alone). Throws `Error`.
  Rc delete_node(const Context& ctx, const std::string& key, const std::string& node) {
    return client_.remove(ctx, node, -1, key, "release");
  }

  // Watches our own node: a delete by anyone else reports the grant lost.
  Rc watch_own(const Context& ctx, const std::string& key, const std::string& node) {
    return client_.exists(
        ctx, node, nullptr,
        [hub = hub_, node] {
          std::lock_guard lk(hub->mu);
          if (hub->backend) hub->backend->node_changed(node);
        },
        key, "watch");
  }

 private:
  template <class F>
  void for_grants(std::uint64_t gen, F&& fn) {
    std::lock_guard lk(mu_);
    for (auto& [node, g] : grants_) {
      if (g->generation == gen) fn(*g);
    }
  }

  // On the client's event thread: our node changed. A delete we did not make is a loss; a
  // write (our renewal) re-arms the watch on the reaper's thread.
  void node_changed(const std::string& node) {
    std::lock_guard lk(mu_);
    auto it = grants_.find(node);
    if (it == grants_.end() || !it->second->ours) return;
    rewatch_.push_back(node);
    cv_.notify_all();
  }

  // The reaper: deletes the nodes of grants whose TTL passed without renewal, and checks
  // nodes whose watch fired (lost if gone, watched again if still there).
  void reap() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      auto next = clock::time_point::max();
      std::vector<std::pair<std::string, std::string>> due;  // key, node
      const auto now = clock::now();
      for (auto& [node, g] : grants_) {
        if (!g->ours) continue;
        if (g->deadline <= now) {
          g->ours = false;
          due.emplace_back(g->key, node);
        } else {
          next = std::min(next, g->deadline);
        }
      }
      std::vector<std::string> check;
      check.swap(rewatch_);
      if (due.empty() && check.empty()) {
        cv_.wait_until(lk, next);
        continue;
      }
      lk.unlock();
      const auto ctx = Context::with_timeout(kCleanupTimeout);
      for (auto& [key, node] : due) {
        try {
          delete_node(ctx, key, node);
        } catch (...) {
          // The session's end frees it.
        }
      }
      for (auto& node : check) {
        Rc rc = Rc::ok;
        try {
          rc = watch_own(ctx, "", node);
        } catch (...) {
          continue;  // The session's events report what happened.
        }
        if (rc == Rc::no_node) {
          std::lock_guard l2(mu_);
          auto it = grants_.find(node);
          if (it != grants_.end() && it->second->ours) {
            it->second->ours = false;
            it->second->report_lost(make_error_code(errc::lock_lost));
          }
        }
      }
      lk.lock();
    }
  }

  // What a node watch reaches: the backend until it closes (a watch never keeps it alive, so
  // it is never destroyed on the client's event thread).
  struct Hub {
    std::mutex mu;
    ZkBackend* backend = nullptr;
  };

  const ZooKeeperConfig cfg_;
  Client client_;
  std::shared_ptr<Hub> hub_ = std::make_shared<Hub>();
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ZkGrant*> grants_;  // By node path.
  std::vector<std::string> rewatch_;
  bool stopping_ = false;
  std::thread reaper_;
  std::atomic<bool> closed_{false};
};

ZkGrant::ZkGrant(std::shared_ptr<ZkBackend> b, std::string k, std::string n, NodeStat st,
                 std::uint64_t gen, clock::time_point dl, std::string md)
    : key(std::move(k)),
      node(std::move(n)),
      czxid(st.czxid),
      generation(gen),
      metadata(std::move(md)),
      version(st.version),
      deadline(dl),
      b_(std::move(b)) {
  b_->add(this);
}

ZkGrant::~ZkGrant() { b_->remove(this); }

// One acquisition: its node is created once; later attempts re-check the contenders, and a
// waiter watches only its predecessor.
class ZkSession final : public AcquireSession {
 public:
  ZkSession(std::shared_ptr<ZkBackend> b, const AcquireRequest& r)
      : b_(std::move(b)),
        req_(r),
        dir_(b_->dir(r.key)),
        shared_(r.mode.kind == LockMode::Kind::shared),
        prefix_(r.token + (shared_ ? kReadNodeName : kNodeName)),
        signal_(std::make_shared<Signal>()) {}

  Attempt attempt(const Context& ctx) override {
    Client& c = b_->client();
    const auto gen = c.ensure(ctx, req_.key, "acquire");
    if (!node_.empty() && gen != gen_) node_.clear();  // Gone with the old session.
    std::vector<std::string> names;
    if (node_.empty() && maybe_created_) {
      // A create whose reply was lost: find it by our token (Curator's protection).
      if (c.children(ctx, dir_, &names, req_.key, "acquire") == Rc::ok) {
        for (auto& n : names) {
          if (n.rfind(prefix_, 0) == 0) node_ = dir_ + "/" + n;
        }
      }
      if (!node_.empty() && c.exists(ctx, node_, &st_, nullptr, req_.key, "acquire") != Rc::ok) {
        node_.clear();
      }
      if (!node_.empty()) gen_ = gen;
      maybe_created_ = false;
    }
    if (node_.empty() && !req_.waits) {
      // One attempt: a lock that a contender blocks is taken (no node created for nothing).
      names.clear();
      if (c.children(ctx, dir_, &names, req_.key, "acquire") == Rc::ok) {
        const auto order = contenders(std::move(names));
        if (shared_ ? std::any_of(order.begin(), order.end(),
                                  [](const std::string& n) { return !is_read(n); })
                    : !order.empty()) {
          return Attempt::lost();
        }
      }
    }
    const auto started = clock::now();
    if (node_.empty()) create(ctx, gen);
    names.clear();
    Rc rc = c.children(ctx, dir_, &names, req_.key, "acquire");
    const std::string mine = node_.substr(dir_.size() + 1);
    auto order = contenders(std::move(names));
    auto at = std::find(order.begin(), order.end(), mine);
    if (rc != Rc::ok || at == order.end()) {
      // Our node is gone (force-released while we waited): a new one at once.
      node_.clear();
      return Attempt::lost(milliseconds(0));
    }
    // The nearest lower node that blocks ours: for a writer any, for a reader a write node.
    auto blocker = order.end();
    for (auto it = at; it != order.begin();) {
      --it;
      if (!shared_ || !is_read(*it)) {
        blocker = it;
        break;
      }
    }
    if (blocker == order.end()) {
      // Nothing ahead blocks ours. The grant is registered before its node is watched (so that a
      // force release from then on is heard), and the watch re-reads the node.
      auto g = std::make_unique<ZkGrant>(b_, req_.key, node_, st_, gen_, started + req_.ttl,
                                         req_.metadata);
      if (b_->watch_own(ctx, req_.key, node_) != Rc::ok) {
        node_.clear();  // Deleted meanwhile: not ours after all.
        return Attempt::lost(milliseconds(0));
      }
      node_.clear();  // Core owns it now (a refused grant is released through the backend).
      return Attempt::won(std::move(g), static_cast<std::uint64_t>(st_.czxid));
    }
    if (!req_.waits) {
      // Someone was ahead of us: take our node back.
      drop_node(ctx);
      return Attempt::lost();
    }
    // Watch only the blocker; if it is already gone, look again at once.
    const std::string pred = dir_ + "/" + *blocker;
    auto sig = signal_;
    {
      std::lock_guard lk(sig->mu);
      sig->changed = false;
    }
    if (c.exists(
            ctx, pred, nullptr, [sig] { sig->fire(); }, req_.key, "acquire") == Rc::no_node) {
      return Attempt::lost(milliseconds(0));
    }
    return Attempt::lost();
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    // Bounded by the session timeout too: a session that ended took our node (and the
    // predecessor's watch) with it, which the next attempt finds.
    const auto end = std::min({until, ctx.deadline(), clock::now() + b_->session_timeout()});
    // Registered before the lock is taken: a stop already requested runs it at once.
    std::stop_callback wake(ctx.stop_token(), [s = signal_] {
      std::lock_guard l2(s->mu);
      s->cv.notify_all();
    });
    std::unique_lock lk(signal_->mu);
    signal_->cv.wait_until(lk, end, [&] { return signal_->changed || ctx.stop_requested(); });
    const bool changed = signal_->changed;
    signal_->changed = false;
    return changed;
  }

  void abandon() noexcept override {
    if (node_.empty() && !maybe_created_) return;
    try {
      const auto ctx = Context::with_timeout(kCleanupTimeout);
      if (node_.empty()) {
        std::vector<std::string> names;
        if (b_->client().children(ctx, dir_, &names, req_.key, "abandon") == Rc::ok) {
          for (auto& n : names) {
            if (n.rfind(prefix_, 0) == 0) node_ = dir_ + "/" + n;
          }
        }
      }
      drop_node(ctx);
    } catch (...) {
      // Our session's end removes it.
    }
    maybe_created_ = false;
  }

 private:
  void create(const Context& ctx, std::uint64_t gen) {
    Client& c = b_->client();
    const std::string data = node_data(req_.metadata, req_.ttl);
    for (int tries = 0;; ++tries) {
      std::string created;
      maybe_created_ = true;
      const Rc rc = c.create(ctx, dir_ + "/" + prefix_, data, NodeKind::ephemeral_sequential,
                             &created, &st_, req_.key, "acquire");
      if (rc == Rc::ok) {
        node_ = created;
        gen_ = gen;
        maybe_created_ = false;
        return;
      }
      maybe_created_ = false;
      if (rc != Rc::no_node || tries >= 3) {
        throw Error(errc::protocol_error, kScheme, req_.key, "acquire",
                    "could not create a lock node under " + dir_);
      }
      c.create_parents(ctx, dir_, NodeKind::container, req_.key, "acquire");
    }
  }

  void drop_node(const Context& ctx) {
    const std::string node = std::move(node_);
    node_.clear();
    b_->delete_node(ctx, req_.key, node);
  }

  std::shared_ptr<ZkBackend> b_;
  AcquireRequest req_;
  const std::string dir_;
  const bool shared_;
  const std::string prefix_;
  std::shared_ptr<Signal> signal_;
  std::string node_;  // Our contender node's path while we contend.
  NodeStat st_;       // Its stat when created.
  std::uint64_t gen_ = 0;
  bool maybe_created_ = false;
};

std::unique_ptr<AcquireSession> ZkBackend::start_acquire(const AcquireRequest& req) {
  return std::make_unique<ZkSession>(shared_from_this(), req);
}

}  // namespace

std::shared_ptr<Backend> make_zookeeper_backend(const ZooKeeperConfig& config, const Context& ctx) {
  validate(config);
  auto b = std::make_shared<ZkBackend>(config);
  b->open(ctx);
  return b;
}

std::pair<std::int64_t, std::string> session_credentials(Backend& backend) {
  auto* b = dynamic_cast<ZkBackend*>(&backend);
  if (!b) return {0, ""};
  return b->client().session_credentials();
}

}  // namespace dlock::detail::zookeeper

namespace dlock::detail {

void add_zookeeper_schemes(SchemeTable& table) {
  auto factory = [](const std::string& url, const Context& ctx) {
    return zookeeper::make_zookeeper_backend(zookeeper::parse_zookeeper_url(url), ctx);
  };
  table["zk"] = factory;
  // Refused with a clear message (no TLS in Debian's C client).
  table["zks"] = factory;
}

}  // namespace dlock::detail

namespace dlock {

Store open(const ZooKeeperConfig& config, const Context& ctx) {
  auto backend = detail::zookeeper::make_zookeeper_backend(config, ctx);
  return detail::make_store(std::move(backend), detail::zookeeper::redacted_url(config));
}

}  // namespace dlock
