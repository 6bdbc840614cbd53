#include "redis/redis_backend.hpp"

#include <charconv>
#include <map>
#include <mutex>
#include <set>

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/token.hpp"
#include "redis/cluster.hpp"
#include "redis/config.hpp"
#include "redis/connection.hpp"
#include "redis/errors.hpp"
#include "redis/scripts.hpp"
#include "redis/sentinel_watch.hpp"
#include "redis/subscriber.hpp"

namespace dlock::detail::redis {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The names of one lock's keys (see scripts.hpp).
struct LockKeys {
  std::string lock, fence, meta, queue, qexp, qdata, wake;
  LockKeys(const std::string& prefix, const std::string& name)
      : lock(prefix + name),
        fence("{" + lock + "}:fence"),
        meta("{" + lock + "}:meta"),
        queue("{" + lock + "}:queue"),
        qexp("{" + lock + "}:qexp"),
        qdata("{" + lock + "}:qdata"),
        wake("{" + lock + "}:wake:") {}
  /// The KEYS of the queue-aware scripts, in their order.
  std::vector<std::string_view> all() const { return {lock, fence, meta, queue, qexp, qdata}; }
};

std::uint64_t parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Escapes glob characters for SCAN MATCH.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

class RedisBackend;

class RedisSession final : public AcquireSession {
 public:
  RedisSession(std::shared_ptr<RedisBackend> b, const AcquireRequest& r);
  ~RedisSession() override;
  Attempt attempt(const Context& ctx) override;
  bool wait(const Context& ctx, clock::time_point until) override;
  void abandon() noexcept override;

 private:
  std::shared_ptr<RedisBackend> b_;
  AcquireRequest req_;
  LockKeys keys_;
  std::string ttl_;
  std::string entry_;                             // Our queue entry: "<sid>:<ttl>:<token>".
  Subscriber* sub_;                               // The backend's, for our lock's node.
  std::shared_ptr<Subscriber::Channel> channel_;  // {K}:wake:<sid>, once subscribed.
  std::uint64_t seen_ = 0;
  bool queued_ = false;               // An attempt put (or may have put) us in the queue.
  clock::time_point last_attempt_{};  // Our queue entry expires a lifetime after this.
};

class RedisBackend final : public Backend, public std::enable_shared_from_this<RedisBackend> {
 public:
  explicit RedisBackend(const RedisConfig& cfg)
      : cfg_(cfg),
        scheme_(!cfg.cluster_nodes.empty() ? (cfg.tls ? "rediss+cluster" : "redis+cluster")
                : !cfg.sentinels.empty()   ? "redis+sentinel"
                : cfg.tls                  ? "rediss"
                                           : "redis"),
        io_(std::make_unique<IoThread>()) {
    auto opts = connection_options(cfg);
    if (!cfg.cluster_nodes.empty()) {
      std::vector<ClusterMap::Address> seeds;
      for (auto& n : cfg.cluster_nodes) seeds.push_back({n.host, n.port});
      cluster_ = std::make_unique<ClusterMap>(io_->context(), opts, seeds);
      base_opts_ = opts;  // Shard subscribers are made per node on first use.
    } else {
      conn_ = Connection::create(io_->context(), opts);
      sub_ = std::make_unique<Subscriber>(io_->context(), opts);
    }
    if (!cfg.sentinels.empty()) {
      // Re-resolve the master as soon as the sentinels announce a new one.
      ConnectionOptions so = opts;
      so.user = cfg.sentinel_user;
      so.password = cfg.sentinel_password;
      so.has_password = !cfg.sentinel_password.empty();
      std::vector<SentinelLocator::Address> sentinels;
      for (auto& e : cfg.sentinels) sentinels.push_back({e.host, e.port});
      watch_ =
          std::make_unique<SentinelWatch>(io_->context(), so, std::move(sentinels),
                                          cfg.sentinel_master, [conn = conn_, sub = sub_.get()] {
                                            conn->reset();
                                            sub->reset();
                                          });
    }
  }
  ~RedisBackend() override { close(); }

  void ping(const Context& ctx) {
    if (cluster_) {
      cluster_->refresh(ctx, scheme_);
      return;
    }
    auto r = call(*conn_, ctx, scheme_, "", "connect", {"PING"});
    if (r.is_error()) throw_server_error(scheme_, "", "connect", r.str);
  }

  std::string_view scheme() const override { return scheme_; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.fifo = true;
    c.binary_keys = true;
    c.min_ttl = milliseconds(1);
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    check_open("acquire");
    return std::make_unique<RedisSession>(shared_from_this(), req);
  }

  bool release(const Context& ctx, const std::string& key, const std::string& token) override {
    check_open("release");
    auto k = keys_for(key);
    auto r = eval(ctx, release_script(sharded()), key, "release", k.all(), {token, k.wake});
    return r.integer == 1;
  }

  bool extend(const Context& ctx, const std::string& key, const std::string& token,
              milliseconds ttl) override {
    check_open("renew");
    auto k = keys_for(key);
    auto t = std::to_string(ttl.count());
    auto r = eval(ctx, extend_script(), key, "renew", {k.lock, k.meta}, {token, t});
    return r.integer == 1;
  }

  bool extends_in_batches() const override { return true; }

  // Renewals that fell due together: one EVALSHA each, all written at once per node (one
  // round trip for the batch). Replies that need the single path (MOVED/ASK in a cluster,
  // READONLY after a failover) take it.
  std::vector<ExtensionResult> extend_many(const Context& ctx,
                                           const std::vector<Extension>& items) override {
    std::vector<ExtensionResult> out(items.size());
    std::vector<LockKeys> keys;
    std::vector<std::string> ttls;
    std::map<std::shared_ptr<Connection>, std::vector<std::size_t>> by_node;
    try {
      check_open("renew");
      keys.reserve(items.size());
      ttls.reserve(items.size());
      for (std::size_t i = 0; i < items.size(); ++i) {
        keys.push_back(keys_for(std::string(items[i].key)));
        ttls.push_back(std::to_string(items[i].ttl.count()));
        by_node[conn_for(keys.back().lock)].push_back(i);
      }
    } catch (const std::system_error& e) {
      for (auto& r : out) r.error = e.code();
      return out;
    }
    const Script& script = extend_script();
    for (auto& [node, idx] : by_node) {
      auto send = [&](const std::vector<std::size_t>& which) {
        std::vector<std::vector<std::string_view>> cmds;
        cmds.reserve(which.size());
        for (std::size_t i : which) {
          cmds.push_back(
              {"EVALSHA", script.sha1, "2", keys[i].lock, keys[i].meta, items[i].token, ttls[i]});
        }
        return call_many(*node, ctx, scheme_, std::string(items[which.front()].key), "renew", cmds);
      };
      std::vector<RespValue> replies;
      try {
        replies = send(idx);
        // A server that lost its script cache (restart) answers NOSCRIPT to all: load the
        // script once and send the batch again.
        if (!replies.empty() && replies.front().is_error() &&
            starts_with(replies.front().str, "NOSCRIPT")) {
          call(*node, ctx, scheme_, std::string(items[idx.front()].key), "renew",
               {"SCRIPT", "LOAD", script.body});
          replies = send(idx);
        }
      } catch (const std::system_error& e) {
        for (std::size_t i : idx) out[i].error = e.code();
        continue;
      }
      for (std::size_t j = 0; j < idx.size(); ++j) {
        const std::size_t i = idx[j];
        const RespValue& r = replies[j];
        if (!r.is_error()) {
          out[i].status = r.integer == 1 ? 1 : 0;
          continue;
        }
        try {  // NOSCRIPT, MOVED, ASK, READONLY...: the single path knows what to do.
          out[i].status =
              extend(ctx, std::string(items[i].key), std::string(items[i].token), items[i].ttl) ? 1
                                                                                                : 0;
        } catch (const std::system_error& e) {
          out[i].error = e.code();
        }
      }
    }
    return out;
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    check_open("inspect");
    auto k = keys_for(key);
    return to_inspection(key, eval(ctx, inspect_script(), key, "inspect", {k.lock, k.meta}, {}));
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& prefix) override {
    check_open("list");
    const std::string pattern = glob_escape(cfg_.prefix + prefix) + "*";
    std::set<std::string> names;
    auto nodes = cluster_ ? cluster_->masters() : std::vector<std::shared_ptr<Connection>>{conn_};
    for (auto& node : nodes) scan(ctx, *node, prefix, pattern, names);
    std::vector<Inspection> out;
    for (auto& name : names) {
      auto i = inspect(ctx, name);
      if (i.info.held) out.push_back(std::move(i));
    }
    return out;
  }

  void scan(const Context& ctx, Connection& node, const std::string& prefix,
            const std::string& pattern, std::set<std::string>& names) {
    std::string cursor = "0";
    do {
      auto r = call(node, ctx, scheme_, prefix, "list",
                    {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (r.is_error()) throw_server_error(scheme_, prefix, "list", r.str);
      if (r.elements.size() != 2) bad_reply(prefix, "list");
      cursor = r.elements[0].str;
      for (auto& e : r.elements[1].elements) {
        const std::string& key = e.str;
        if (!starts_with(key, cfg_.prefix)) continue;
        // With an empty prefix the companions match too: skip them.
        if (key.front() == '{' && (key.ends_with("}:fence") || key.ends_with("}:meta"))) continue;
        names.insert(key.substr(cfg_.prefix.size()));
      }
    } while (cursor != "0");
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    check_open("force_release");
    auto k = keys_for(key);
    auto r = eval(ctx, force_release_script(sharded()), key, "force_release", k.all(), {k.wake});
    return r.integer > 0;
  }

  void close() noexcept override {
    if (closed_.exchange(true)) return;
    if (watch_) watch_->close();
    if (sub_) sub_->close();
    {
      std::lock_guard lk(shard_mu_);
      for (auto& [node, sub] : shard_subs_) sub->close();
    }
    if (conn_) conn_->close();
    if (cluster_) cluster_->close();
    io_->stop();
  }

  /// The names of `key`'s keys. In a cluster, a name with braces would give the lock key a
  /// hash tag of its own and split it from its companions: refused.
  LockKeys keys_for(const std::string& key) const {
    if (cluster_ && (key.find_first_of("{}") != std::string::npos ||
                     cfg_.prefix.find_first_of("{}") != std::string::npos)) {
      throw Error(errc::invalid_argument, scheme_, key, "key",
                  "lock names and the prefix may not contain '{' or '}' in a Redis Cluster");
    }
    return LockKeys(cfg_.prefix, key);
  }

  /// The connection of the node that holds `lock_key`.
  std::shared_ptr<Connection> conn_for(const std::string& lock_key) {
    return cluster_ ? cluster_->for_slot(key_slot(lock_key)) : conn_;
  }

  // ---- for sessions ----
  const RedisConfig& config() const { return cfg_; }
  /// The subscriber that hears `lock_key`'s wake-ups: the store's one subscriber, or in a
  /// cluster the one on the node that owns the key's slot (shard channels, so that a
  /// release's message goes to that node only, not to every node of the cluster).
  Subscriber& subscriber_for(const std::string& lock_key) {
    if (!cluster_) return *sub_;
    auto owner = cluster_->owner(key_slot(lock_key));
    const std::string node = owner.host + ":" + std::to_string(owner.port);
    std::lock_guard lk(shard_mu_);
    auto& sub = shard_subs_[node];
    if (!sub) {
      ConnectionOptions o = base_opts_;
      o.host = owner.host;
      o.port = owner.port;
      sub = std::make_unique<Subscriber>(io_->context(), o, true);
      if (closed_) sub->close();
    }
    return *sub;
  }
  bool sharded() const { return cluster_ != nullptr; }

  /// How long a queue entry lives without a retry of its waiter: long enough for a retry's
  /// round trip, short enough that a crashed waiter delays the others only briefly.
  milliseconds queue_entry_lifetime() const {
    return 2 * cfg_.command_timeout + milliseconds(1000);
  }

  /// This store object's id in queue entries and wake-up channels: a store object has at
  /// most one waiter per lock in the store's queue (its local line admits one at a time).
  const std::string& sid() const { return sid_; }

  Attempt try_acquire(const Context& ctx, const AcquireRequest& req, const LockKeys& k,
                      const std::string& ttl, bool enqueue, const std::string& entry) {
    const std::string life = std::to_string(queue_entry_lifetime().count());
    auto r = eval(ctx, acquire_script(sharded()), req.key, "acquire", k.all(),
                  {req.token, ttl, req.metadata, enqueue ? "1" : "0", life, entry});
    if (r.elements.size() != 2) bad_reply(req.key, "acquire");
    Attempt a;
    a.acquired = r.elements[0].integer == 1;
    if (a.acquired) {
      a.fencing_token = static_cast<std::uint64_t>(r.elements[1].integer);
      if (cfg_.min_replicas > 0) check_replicas(ctx, req, k);
    } else {
      a.holder_ttl = milliseconds(r.elements[1].integer);
    }
    return a;
  }

  /// Removes a waiter's queue entry (and the lock, if it was handed to that waiter
  /// meanwhile); a free lock goes to the next waiter.
  void leave_queue(const AcquireRequest& req, const LockKeys& k, const std::string& entry) {
    eval(Context::with_timeout(cfg_.command_timeout), leave_queue_script(sharded()), req.key,
         "acquire", k.all(), {req.token, k.wake, entry});
  }

  void check_open(const char* step) const {
    if (closed_) throw Error(errc::closed, scheme_, "", step);
  }

 private:
  [[noreturn]] void bad_reply(const std::string& key, const std::string& step) {
    throw Error(errc::protocol_error, scheme_, key, step, "unexpected reply shape");
  }

  // Redisson's replica check: the grant counts only once `min_replicas` replicas have it.
  void check_replicas(const Context& ctx, const AcquireRequest& req, const LockKeys& k) {
    const auto n = std::to_string(cfg_.min_replicas);
    const auto t = std::to_string(cfg_.replica_timeout.count());
    auto wait_ctx = ctx.sub(cfg_.replica_timeout + cfg_.command_timeout);
    auto r = call(*conn_for(k.lock), wait_ctx, scheme_, req.key, "acquire", {"WAIT", n, t});
    if (!r.is_error() && r.integer >= cfg_.min_replicas) return;
    // Undo the grant before failing (conditional on our token).
    try {
      eval(Context::with_timeout(cfg_.command_timeout), release_script(sharded()), req.key,
           "acquire", k.all(), {req.token, k.wake});
    } catch (...) {
    }
    if (r.is_error()) throw_server_error(scheme_, req.key, "acquire", r.str);
    throw Error(errc::unavailable, scheme_, req.key, "acquire",
                "only " + std::to_string(r.integer) + " of " + n +
                    " required replicas acknowledged the grant");
  }

  // EVALSHA, falling back to EVAL (which caches the script again) after a server restart. In
  // a cluster, follows MOVED (reloading the slot map) and ASK redirects.
  RespValue eval(const Context& ctx, const Script& s, const std::string& key, const char* step,
                 std::vector<std::string_view> keys, std::vector<std::string_view> args) {
    const std::string nkeys = std::to_string(keys.size());
    std::vector<std::string_view> cmd{"EVALSHA", s.sha1, nkeys};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), args.begin(), args.end());
    const std::string lock_key(keys.front());
    std::shared_ptr<Connection> conn = conn_for(lock_key);
    bool asking = false;
    RespValue r;
    for (int hop = 0; hop < 5; ++hop) {
      r = send(ctx, *conn, key, step, cmd, asking);
      if (r.is_error() && starts_with(r.str, "NOSCRIPT")) {
        auto full = cmd;
        full[0] = "EVAL";
        full[1] = s.body;
        r = send(ctx, *conn, key, step, full, asking);
      }
      const bool moved = starts_with(r.str, "MOVED "), ask = starts_with(r.str, "ASK ");
      if (!r.is_error() || !cluster_ || (!moved && !ask)) break;
      // "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>"
      auto target = std::string_view(r.str).substr(r.str.rfind(' ') + 1);
      auto colon = target.rfind(':');
      std::string host(target.substr(0, colon));
      auto port = static_cast<std::uint16_t>(parse_u64(target.substr(colon + 1)));
      if (host.empty()) host = cfg_.cluster_nodes.front().host;
      if (moved) cluster_->refresh(ctx, scheme_);
      conn = cluster_->node(host, port);
      asking = ask;
    }
    if (r.is_error()) {
      // A master that became a replica (failover): reconnect, asking the sentinels again.
      if (starts_with(r.str, "READONLY")) conn->reset();
      throw_server_error(scheme_, key, step, r.str);
    }
    return r;
  }

  // One command, preceded by ASKING after an ASK redirect.
  RespValue send(const Context& ctx, Connection& conn, const std::string& key, const char* step,
                 const std::vector<std::string_view>& cmd, bool asking) {
    if (!asking) return call(conn, ctx, scheme_, key, step, cmd);
    auto replies = call_many(conn, ctx, scheme_, key, step, {{"ASKING"}, cmd});
    return std::move(replies.back());
  }

  Inspection to_inspection(const std::string& key, const RespValue& r) {
    Inspection out;
    out.info.key = key;
    if (r.elements.size() != 3) return out;
    const std::string& token = r.elements[0].str;
    const long long pttl = r.elements[1].integer;
    const std::string& meta = r.elements[2].str;
    out.info.held = true;
    out.info.ttl_remaining = pttl >= 0 ? milliseconds(pttl) : milliseconds(-1);
    // The metadata counts only if it is this holder's (a foreign client writes none).
    if (!token.empty() && starts_with(meta, token) && meta.size() > token.size() &&
        meta[token.size()] == '\n') {
      auto rest = std::string_view(meta).substr(token.size() + 1);
      auto nl = rest.find('\n');
      if (nl != std::string_view::npos) {
        out.info.fencing_token = parse_u64(rest.substr(0, nl));
        out.metadata = std::string(rest.substr(nl + 1));
      }
    }
    return out;
  }

  RedisConfig cfg_;
  std::string scheme_;
  const std::string sid_ = random_token().substr(0, 16);
  std::unique_ptr<IoThread> io_;
  std::shared_ptr<Connection> conn_;      // Single node and Sentinel.
  std::unique_ptr<ClusterMap> cluster_;   // Cluster.
  std::unique_ptr<Subscriber> sub_;       // Single node and Sentinel.
  std::unique_ptr<SentinelWatch> watch_;  // Sentinel.
  ConnectionOptions base_opts_;           // Cluster: for the shard subscribers.
  std::mutex shard_mu_;
  std::map<std::string, std::unique_ptr<Subscriber>> shard_subs_;  // "host:port" -> subscriber
  std::atomic<bool> closed_{false};
};

RedisSession::RedisSession(std::shared_ptr<RedisBackend> b, const AcquireRequest& r)
    : b_(std::move(b)),
      req_(r),
      keys_(b_->keys_for(r.key)),
      ttl_(std::to_string(r.ttl.count())),
      entry_(b_->sid() + ":" + ttl_ + ":" + r.token),
      sub_(&b_->subscriber_for(keys_.lock)) {}

RedisSession::~RedisSession() {
  if (channel_) sub_->unsubscribe(channel_);
}

Attempt RedisSession::attempt(const Context& ctx) {
  b_->check_open("acquire");
  auto& sub = *sub_;
  // A subscription kept from an earlier wait on this lock lets even the first attempt queue.
  if (!channel_ && req_.waits) channel_ = sub.try_join(keys_.wake + b_->sid());
  if (channel_ && queued_ && b_->config().min_replicas == 0) {
    // Handed over by a release ("<token> <fencing>" on our channel): ours without a round
    // trip. The release ran after our last attempt was sent, so the TTL counts from there.
    // (With min_replicas the attempt below confirms it: its write is what WAIT can count.)
    const std::string msg = sub.last_message(*channel_);
    if (msg.size() > req_.token.size() && msg.starts_with(req_.token) &&
        msg[req_.token.size()] == ' ') {
      Attempt a;
      a.acquired = true;
      a.fencing_token = parse_u64(std::string_view(msg).substr(req_.token.size() + 1));
      a.valid_from = last_attempt_;
      a.sent_to_store = false;
      queued_ = false;
      return a;
    }
  }
  // The first attempt (without a subscription) only takes a free lock nobody queues for.
  // Later ones (made after we subscribed to our wake-up channel) also queue us, so a release
  // hands us the lock in turn.
  const bool enqueue = channel_ != nullptr;
  // Note the channel's version first: a message published after this is one to wait for.
  if (channel_) seen_ = sub.version(*channel_);
  if (enqueue) {
    queued_ = true;
    last_attempt_ = clock::now();
  }
  Attempt a = b_->try_acquire(ctx, req_, keys_, ttl_, enqueue, entry_);
  if (a.acquired) queued_ = false;
  return a;
}

bool RedisSession::wait(const Context& ctx, clock::time_point until) {
  if (!channel_) {
    // First loss: subscribe (bounded by the command timeout), then retry at once.
    auto limit = std::min(ctx.deadline(), clock::now() + b_->config().command_timeout);
    channel_ = sub_->subscribe(keys_.wake + b_->sid(), limit, ctx.stop_token());
    return false;
  }
  // Retry before our queue entry expires (half its lifetime leaves room for the round trip).
  auto refresh = last_attempt_ + b_->queue_entry_lifetime() / 2;
  auto limit = std::min({until, ctx.deadline(), refresh});
  return sub_->wait_change(*channel_, seen_, limit, ctx.stop_token());
}

void RedisSession::abandon() noexcept {
  if (!queued_) return;
  queued_ = false;
  try {
    b_->leave_queue(req_, keys_, entry_);
  } catch (...) {
    // Unreachable server: the entry expires by itself within its lifetime.
  }
}

}  // namespace

std::shared_ptr<Backend> make_redis_backend(const RedisConfig& config, const Context& ctx) {
  auto b = std::make_shared<RedisBackend>(config);
  b->ping(ctx);
  return b;
}

}  // namespace dlock::detail::redis

namespace dlock::detail {

void add_redis_schemes(SchemeTable& table) {
  auto factory = [](const std::string& url, const Context& ctx) {
    return redis::make_redis_backend(redis::parse_redis_url(url), ctx);
  };
  table["redis"] = factory;
  table["rediss"] = factory;
  table["redis+sentinel"] = factory;
  table["redis+cluster"] = factory;
  table["rediss+cluster"] = factory;
}

}  // namespace dlock::detail

namespace dlock {

Store open(const RedisConfig& config, const Context& ctx) {
  auto backend = detail::redis::make_redis_backend(config, ctx);
  return Store(detail::make_store_core(std::move(backend), detail::redis::redacted_url(config)));
}

}  // namespace dlock
