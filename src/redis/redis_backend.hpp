// The Redis store: the lock protocol of scripts.hpp over one multiplexed connection per node
// (router.hpp), plus one subscriber connection (per node waited on, in a cluster) for the
// wake-up channels, and with Sentinel a watch of the sentinels' master switches.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/backend.hpp"
#include "dlock/redis.hpp"
#include "redis/grant.hpp"
#include "redis/keys.hpp"
#include "redis/revocations.hpp"
#include "redis/router.hpp"
#include "redis/sentinel_watch.hpp"
#include "redis/subscriber.hpp"

namespace dlock::detail::redis {

class RedisBackend final : public Backend, public std::enable_shared_from_this<RedisBackend> {
 public:
  /// Builds the store's connections (none is made yet). Throws `Error(invalid_argument)`.
  explicit RedisBackend(const RedisConfig& config);
  ~RedisBackend() override;

  /// Connects and checks the server (PING; in a cluster, loads the slot map). Throws `Error`.
  void ping(const Context& ctx);

  std::string_view scheme() const override { return router_.scheme(); }
  Capabilities capabilities() const override;
  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override;
  GrantResult release(const Context& ctx, GrantState& grant) noexcept override;
  GrantResult extend(const Context& ctx, GrantState& grant,
                     std::chrono::milliseconds ttl) noexcept override;
  std::vector<GrantResult> extend_many(const Context& ctx,
                                       std::span<const Extension> items) noexcept override;
  Inspection inspect(const Context& ctx, const std::string& key) override;
  std::vector<Inspection> list(const Context& ctx, const std::string& prefix) override;
  bool force_release(const Context& ctx, const std::string& key) override;
  void close() noexcept override;

  // ---- for sessions ----

  /// The names of `key`'s keys. In a cluster, a name with braces would give the lock key a
  /// hash tag of its own and split it from its companions: refused. Throws `Error`.
  LockKeys keys_for(const std::string& key) const;
  const RedisConfig& config() const noexcept { return cfg_; }
  /// The subscriber that hears `lock_key`'s wake-ups: the store's one subscriber, or in a
  /// cluster the one on the node that owns the key's slot (shard channels, so that a
  /// release's message goes to that node only, not to every node of the cluster).
  Subscriber& subscriber_for(const std::string& lock_key);
  /// Whether the scripts publish on shard channels (a cluster).
  bool sharded() const noexcept { return router_.cluster() != nullptr; }
  /// How long a queue entry lives without a retry of its waiter: long enough for a retry's
  /// round trip, short enough that a crashed waiter delays the others only briefly.
  std::chrono::milliseconds queue_entry_lifetime() const;
  /// This store object's id in queue entries and wake-up channels: a store object has at
  /// most one waiter per lock in the store's queue (its local line admits one at a time).
  const std::string& sid() const noexcept { return sid_; }
  /// One run of the acquire script (queueing the entry when `enqueue`); then, with
  /// `min_replicas`, the replica check. Throws `Error`.
  Attempt try_acquire(const Context& ctx, const AcquireRequest& req, const LockKeys& keys,
                      const std::string& ttl, bool enqueue, const std::string& entry);
  /// The state of a grant won by `req`.
  std::unique_ptr<RedisGrant> new_grant(const AcquireRequest& req, const LockKeys& keys);
  /// Removes a waiter's queue entry (and the lock, if it was handed to that waiter
  /// meanwhile); a free lock goes to the next waiter. Throws `Error`.
  void leave_queue(const AcquireRequest& req, const LockKeys& keys, const std::string& entry);

 private:
  void check_replicas(const Context& ctx, const AcquireRequest& req, const LockKeys& keys);
  void scan(const Context& ctx, Connection& node, const std::string& prefix,
            const std::string& pattern, std::set<std::string>& names);

  const RedisConfig cfg_;
  const std::string sid_;
  const ConnectionOptions opts_;  // Of the node connections; the subscribers' base.
  std::unique_ptr<IoThread> io_;
  Router router_;
  std::unique_ptr<Subscriber> sub_;       // Single node and Sentinel.
  std::unique_ptr<SentinelWatch> watch_;  // Sentinel.
  std::mutex shard_mu_;
  std::map<std::string, std::unique_ptr<Subscriber>> shard_subs_;  // "host:port" -> subscriber
  std::shared_ptr<Revocations> revocations_ = std::make_shared<Revocations>();
  std::atomic<bool> closed_{false};
};

/// Connects (one PING, bounded by `ctx` and the connect timeout) and returns the store.
/// Throws `Error`: invalid_argument, unavailable, auth_failed, timeout.
std::shared_ptr<Backend> make_redis_backend(const RedisConfig& config, const Context& ctx);

}  // namespace dlock::detail::redis
