// dlock/redis.hpp: opening the Redis store from a config struct instead of a URL.
//
//   dlock::RedisConfig cfg{.host = "10.0.0.5", .password = "secret", .prefix = "jobs:"};
//   dlock::Store store = dlock::open(cfg);
//
// The same settings as the URL `redis://[user[:pass]@]host[:port][/db][?k=v...]` (and
// `rediss://` for TLS, `redis+sentinel://s1:p1,s2:p2/<master>[/db]` for Sentinel,
// `rediss+sentinel://` for Sentinel over TLS, `redis+cluster://n1:p1,n2:p2` for Cluster,
// `rediss+cluster://` for Cluster over TLS); see
// docs/stores/redis.md for key names, guarantees and tuning.
// Available when dlock was built with the Redis store (`DLOCK_WITH_REDIS`).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// A host and port (of a Redis Sentinel or cluster node).
struct RedisEndpoint {
  std::string host{};
  std::uint16_t port = 26379;
};

/// Settings of a Redis store object: one node, or the master of a Sentinel group.
struct RedisConfig {
  /// Host name or address of the Redis server. Default "127.0.0.1".
  std::string host = "127.0.0.1";
  /// TCP port. Default 6379.
  std::uint16_t port = 6379;
  /// ACL user for `AUTH user password`; empty: `AUTH password` (the default user).
  std::string user{};
  /// Password; empty: no AUTH is sent.
  std::string password{};
  /// Database number selected on connect (SELECT). Default 0.
  int db = 0;
  /// Bound on establishing a connection (TCP, TLS, AUTH, SELECT, PING). Default 2 s.
  std::chrono::milliseconds connect_timeout{2000};
  /// Bound on each request's reply; a connection whose oldest request waits longer is reset.
  /// Default 2 s. (URL key `request_timeout`, alias `command_timeout`.)
  std::chrono::milliseconds request_timeout{2000};
  /// Use TLS (what `rediss://`, `rediss+sentinel://` and `rediss+cluster://` mean). Default
  /// false.
  bool tls = false;
  /// PEM file of the CA certificates that verify the server; empty: the system's defaults.
  /// (URL key `ca_file`, alias `ca`.)
  std::string ca_file{};
  /// PEM client certificate (chain) for mutual TLS; empty: none. (URL key `cert_file`, alias
  /// `cert`.)
  std::string cert_file{};
  /// PEM private key of `cert_file`; empty: none. (URL key `key_file`, alias `key`.)
  std::string key_file{};
  /// Server name sent as SNI and checked in the certificate; empty: `host` (in a cluster: each
  /// node's own address from the slot map; with Sentinel: each sentinel's address and the
  /// master's address as the sentinels announce it; so certificates need IP SANs when the
  /// addresses are IPs). Set in a cluster or with Sentinel, every node's (and sentinel's)
  /// certificate must carry this name.
  std::string tls_sni{};
  /// Verify the server's certificate and name. Default true; false only for testing.
  bool tls_verify = true;
  /// Prepended to every lock name: the lock key is exactly `<prefix><name>`. Default "lock:".
  std::string prefix = "lock:";
  /// After each grant, `WAIT` until this many replicas acknowledged it, or release it and
  /// fail with `errc::unavailable`. Default 0 (no check).
  int min_replicas = 0;
  /// Bound on that `WAIT`. Default 1 s. The `WAIT` holds up the store object's connection
  /// meanwhile, so with `min_replicas` every reply may take `request_timeout` plus this.
  std::chrono::milliseconds replica_timeout{1000};
  /// Sentinel (what `redis+sentinel://` means; with `tls`, `rediss+sentinel://`): the
  /// sentinels asked for the address of the master named `sentinel_master` before every
  /// (re)connect; `host`/`port` are then ignored. Empty (default): connect to `host:port`.
  /// With `tls`, the sentinels and the master are reached over TLS with the same CA, client
  /// certificate and verification settings.
  std::vector<RedisEndpoint> sentinels{};
  /// The master group's name as configured in the sentinels (`sentinel monitor <name> ...`).
  std::string sentinel_master{};
  /// ACL user for AUTH at the sentinels; empty: `AUTH sentinel_password` (default user).
  std::string sentinel_user{};
  /// Password of the sentinels; empty: no AUTH at the sentinels.
  std::string sentinel_password{};
  /// Redis Cluster (what `redis+cluster://` means; with `tls`, `rediss+cluster://`): some
  /// nodes of the cluster, from which the slot map is loaded; `host`/`port` are then ignored.
  /// Empty (default): no cluster. Lock names and the prefix may not contain braces then; `db`
  /// must be 0. With `tls`, every node (and each node a MOVED/ASK names) is reached over TLS
  /// with the same CA, client certificate and verification settings.
  std::vector<RedisEndpoint> cluster_nodes{};
};

/// Opens a Redis store object: connects, authenticates and checks the server with one PING.
/// Blocks up to `ctx` and `config.connect_timeout`. Throws `Error`: `invalid_argument` (bad
/// settings, unreadable TLS files), `unavailable` (no server, TLS failure, timeout),
/// `auth_failed` (wrong credentials or missing permission). Defined only in builds with the
/// Redis store.
DLOCK_API Store open(const RedisConfig& config,
                     const Context& ctx = Context::with_timeout(std::chrono::seconds(10)));

}  // namespace dlock
