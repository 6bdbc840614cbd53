#include "redis/redis_backend.hpp"

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/token.hpp"
#include "redis/config.hpp"
#include "redis/errors.hpp"
#include "redis/scripts.hpp"
#include "redis/session.hpp"

namespace dlock::detail::redis {
namespace {

using std::chrono::milliseconds;

Router make_router(const RedisConfig& cfg, const ConnectionOptions& opts, IoThread& io) {
  if (cfg.cluster_nodes.empty()) {
    return Router(scheme_of(cfg), Connection::create(io.context(), opts));
  }
  std::vector<Address> seeds;
  for (auto& n : cfg.cluster_nodes) seeds.push_back({n.host, n.port});
  return Router(scheme_of(cfg), std::make_unique<ClusterMap>(io.context(), opts, seeds));
}

}  // namespace

RedisBackend::RedisBackend(const RedisConfig& cfg)
    : cfg_(cfg),
      sid_(random_token().substr(0, 16)),
      opts_(connection_options(cfg)),
      io_(std::make_unique<IoThread>()),
      router_(make_router(cfg_, opts_, *io_)) {
  // Shard subscribers (cluster) are made per node on first use.
  if (!router_.cluster()) sub_ = std::make_unique<Subscriber>(io_->context(), opts_);
  if (!cfg.sentinels.empty()) {
    // Re-resolve the master as soon as the sentinels announce a new one.
    ConnectionOptions so = opts_;
    so.user = cfg.sentinel_user;
    so.password = cfg.sentinel_password;
    so.has_password = !cfg.sentinel_password.empty();
    std::vector<Address> sentinels;
    for (auto& e : cfg.sentinels) sentinels.push_back({e.host, e.port});
    watch_ = std::make_unique<SentinelWatch>(io_->context(), so, std::move(sentinels),
                                             cfg.sentinel_master,
                                             [conn = router_.conn_for(""), sub = sub_.get()] {
                                               conn->reset();
                                               sub->reset();
                                             });
  }
}

RedisBackend::~RedisBackend() { close(); }

void RedisBackend::ping(const Context& ctx) {
  if (router_.cluster()) {
    router_.refresh_slots(ctx);
    return;
  }
  auto r = router_.run(ctx, *router_.conn_for(""), "", "connect", {"PING"});
  if (r.is_error()) router_.server_error("", "connect", r);
}

Capabilities RedisBackend::capabilities() const {
  Capabilities c;
  c.notifies = true;
  c.fifo = true;
  c.binary_keys = true;
  c.min_ttl = milliseconds(1);
  c.extends_in_batches = true;
  return c;
}

std::unique_ptr<AcquireSession> RedisBackend::start_acquire(const AcquireRequest& req) {
  return std::make_unique<RedisSession>(shared_from_this(), req);
}

GrantResult RedisBackend::release(const Context& ctx, GrantState& grant) noexcept {
  auto& g = static_cast<RedisGrant&>(grant);
  return guarded([&] {
    auto r = router_.eval(ctx, release_script(sharded()), g.key, "release", g.keys.all(),
                          {g.token, g.keys.wake});
    return GrantResult::held_if(r.integer == 1);
  });
}

GrantResult RedisBackend::extend(const Context& ctx, GrantState& grant, milliseconds ttl) noexcept {
  auto& g = static_cast<RedisGrant&>(grant);
  return guarded([&] {
    auto t = std::to_string(ttl.count());
    auto r = router_.eval(ctx, extend_script(), g.key, "renew", {g.keys.lock, g.keys.meta},
                          {g.token, t});
    return GrantResult::held_if(r.integer == 1);
  });
}

// Renewals that fell due together: one EVALSHA each, all written at once per node (one round
// trip for the batch). Replies that need the single path (MOVED/ASK in a cluster, READONLY
// after a failover) take it.
std::vector<GrantResult> RedisBackend::extend_many(const Context& ctx,
                                                   std::span<const Extension> items) noexcept {
  auto grant = [&](std::size_t i) -> RedisGrant& {
    return static_cast<RedisGrant&>(*items[i].grant);
  };
  std::vector<GrantResult> out(items.size());
  std::vector<std::string> ttls;
  std::map<std::shared_ptr<Connection>, std::vector<std::size_t>> by_node;
  try {
    ttls.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      ttls.push_back(std::to_string(items[i].ttl.count()));
      by_node[router_.conn_for(grant(i).keys.lock)].push_back(i);
    }
  } catch (...) {
    for (auto& r : out) r = GrantResult::failed(make_error_code(errc::protocol_error));
    return out;
  }
  for (auto& [node, idx] : by_node) {
    std::vector<RespValue> replies;
    auto failed = guarded([&] {
      std::vector<std::vector<std::string_view>> batch;
      batch.reserve(idx.size());
      for (std::size_t i : idx) {
        const RedisGrant& g = grant(i);
        batch.push_back({g.keys.lock, g.keys.meta, g.token, ttls[i]});
      }
      replies = router_.eval_batch(ctx, *node, extend_script(), grant(idx.front()).key, "renew", 2,
                                   batch);
      return GrantResult::held();
    });
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const std::size_t i = idx[j];
      if (failed.status == GrantStatus::failed) {
        out[i] = failed;
      } else if (replies[j].is_error()) {
        out[i] = extend(ctx, *items[i].grant, items[i].ttl);  // MOVED, READONLY...
      } else {
        out[i] = GrantResult::held_if(replies[j].integer == 1);
      }
    }
  }
  return out;
}

Backend::Inspection RedisBackend::inspect(const Context& ctx, const std::string& key) {
  auto k = keys_for(key);
  auto r =
      router_.eval(ctx, inspect_script(), key, "inspect", {k.lock, k.meta, k.queue, k.qexp}, {});
  auto out = parse_inspection(key, r);
  if (!out) router_.bad_reply(key, "inspect");
  return std::move(*out);
}

std::vector<Backend::Inspection> RedisBackend::list(const Context& ctx, const std::string& prefix) {
  const std::string pattern = glob_escape(cfg_.prefix + prefix) + "*";
  std::set<std::string> names;
  for (auto& node : router_.masters()) scan(ctx, *node, prefix, pattern, names);
  std::vector<Inspection> out;
  for (auto& name : names) {
    auto i = inspect(ctx, name);
    if (!i.holders.empty()) out.push_back(std::move(i));
  }
  return out;
}

void RedisBackend::scan(const Context& ctx, Connection& node, const std::string& prefix,
                        const std::string& pattern, std::set<std::string>& names) {
  std::string cursor = "0";
  do {
    auto r =
        router_.run(ctx, node, prefix, "list", {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (r.is_error()) router_.server_error(prefix, "list", r);
    if (r.elements.size() != 2) router_.bad_reply(prefix, "list");
    cursor = r.elements[0].str;
    for (auto& e : r.elements[1].elements) {
      const std::string& key = e.str;
      // With an empty prefix the companions match too: skip them.
      if (!key.starts_with(cfg_.prefix) || is_companion(key)) continue;
      names.insert(key.substr(cfg_.prefix.size()));
    }
  } while (cursor != "0");
}

bool RedisBackend::force_release(const Context& ctx, const std::string& key) {
  auto k = keys_for(key);
  auto r = router_.eval(ctx, force_release_script(sharded()), key, "force_release", k.all(),
                        {k.wake, k.revoked});
  return r.integer > 0;
}

void RedisBackend::close() noexcept {
  if (closed_.exchange(true)) return;  // Core closes once; the destructor closes too.
  revocations_->close();  // Before the subscribers go: tickets then touch them no more.
  if (watch_) watch_->close();
  if (sub_) sub_->close();
  {
    std::lock_guard lk(shard_mu_);
    for (auto& [node, sub] : shard_subs_) sub->close();
  }
  router_.close();
  io_->stop();
}

LockKeys RedisBackend::keys_for(const std::string& key) const {
  if (router_.cluster() && (key.find_first_of("{}") != std::string::npos ||
                            cfg_.prefix.find_first_of("{}") != std::string::npos)) {
    throw Error(errc::invalid_argument, std::string(scheme()), key, "key",
                "lock names and the prefix may not contain '{' or '}' in a Redis Cluster");
  }
  return LockKeys(cfg_.prefix, key);
}

Subscriber& RedisBackend::subscriber_for(const std::string& lock_key) {
  if (!router_.cluster()) return *sub_;
  auto owner = router_.cluster()->owner(key_slot(lock_key));
  const std::string node = owner.host + ":" + std::to_string(owner.port);
  std::lock_guard lk(shard_mu_);
  auto& sub = shard_subs_[node];
  if (!sub) {
    ConnectionOptions o = opts_;
    o.host = owner.host;
    o.port = owner.port;
    sub = std::make_unique<Subscriber>(io_->context(), o, true);
    if (closed_) sub->close();
  }
  return *sub;
}

milliseconds RedisBackend::queue_entry_lifetime() const {
  return 2 * cfg_.request_timeout + milliseconds(1000);
}

Attempt RedisBackend::try_acquire(const Context& ctx, const AcquireRequest& req, const LockKeys& k,
                                  const std::string& ttl, bool enqueue, const std::string& entry) {
  const std::string life = std::to_string(queue_entry_lifetime().count());
  auto r = router_.eval(ctx, acquire_script(sharded()), req.key, "acquire", k.all(),
                        {req.token, ttl, req.metadata, enqueue ? "1" : "0", life, entry});
  if (r.elements.size() != 2) router_.bad_reply(req.key, "acquire");
  if (r.elements[0].integer != 1) return Attempt::lost(milliseconds(r.elements[1].integer));
  if (cfg_.min_replicas > 0) check_replicas(ctx, req, k);
  return Attempt::won(new_grant(req, k), static_cast<std::uint64_t>(r.elements[1].integer));
}

std::unique_ptr<RedisGrant> RedisBackend::new_grant(const AcquireRequest& req,
                                                    const LockKeys& keys) {
  auto g = std::make_unique<RedisGrant>(req.key, keys, req.token);
  g->revocation = revocations_->add(subscriber_for(keys.lock), keys.revoked, req.token, *g);
  return g;
}

void RedisBackend::leave_queue(const AcquireRequest& req, const LockKeys& k,
                               const std::string& entry) {
  router_.eval(Context::with_timeout(cfg_.request_timeout), leave_queue_script(sharded()), req.key,
               "acquire", k.all(), {req.token, k.wake, entry});
}

// Redisson's replica check: the grant counts only once `min_replicas` replicas have it.
void RedisBackend::check_replicas(const Context& ctx, const AcquireRequest& req,
                                  const LockKeys& k) {
  const auto n = std::to_string(cfg_.min_replicas);
  const auto t = std::to_string(cfg_.replica_timeout.count());
  auto wait_ctx = ctx.sub(cfg_.replica_timeout + cfg_.request_timeout);
  auto r = router_.run(wait_ctx, *router_.conn_for(k.lock), req.key, "acquire", {"WAIT", n, t});
  if (!r.is_error() && r.integer >= cfg_.min_replicas) return;
  // Undo the grant before failing (conditional on our token).
  try {
    router_.eval(Context::with_timeout(cfg_.request_timeout), release_script(sharded()), req.key,
                 "acquire", k.all(), {req.token, k.wake});
  } catch (...) {
  }
  if (r.is_error()) router_.server_error(req.key, "acquire", r);
  raise(scheme(), req.key, "acquire",
        Failure{errc::unavailable, "only " + std::to_string(r.integer) + " of " + n +
                                       " required replicas acknowledged the grant"});
}

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
  for (const char* scheme : {"redis", "rediss", "redis+sentinel", "rediss+sentinel",
                             "redis+cluster", "rediss+cluster"}) {
    table[scheme] = factory;
  }
}

}  // namespace dlock::detail

namespace dlock {

Store open(const RedisConfig& config, const Context& ctx) {
  auto backend = detail::redis::make_redis_backend(config, ctx);
  return detail::make_store(std::move(backend), detail::redis::redacted_url(config));
}

}  // namespace dlock
