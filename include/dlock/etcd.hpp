// dlock/etcd.hpp: the etcd stores, for locks that must be linearizable.
//
// Two stores share one gRPC etcd v3 client (several endpoints with failover, connect and
// per-call timeouts, user/password auth, TLS):
//  - `etcd://` (the default): a FIFO mutex with the key layout of Go's `concurrency.Mutex`
//    (waiter key `<prefix><name>/<lease id in hex>`, the lowest create revision holds, each
//    waiter watches only its predecessor). It excludes and is excluded by
//    `etcdctl lock <prefix><name>`.
//  - `etcd+txn://`: the transaction lock on the key `<prefix><name>`.
// Every acquisition has its own etcd lease with the acquisition's TTL (whole seconds, rounded
// up; etcd raises it to its own minimum, 2 s by default). Fencing tokens are etcd create
// revisions. Waiting, and the watch of held keys that reports a lock's loss as soon as etcd
// deletes its key (`LossReason::store_reported`), use one watch stream per store object;
// renewals are lease keep-alives sent on one keep-alive stream per store object. See
// docs/stores/etcd.md.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// How to reach etcd and lay out lock keys. URL forms:
/// `etcd://[user:password@]h1:2379,h2:2379[/?prefix=lock/&connect_timeout=5s&request_timeout=5s]`
/// (`dial_timeout=` is accepted as an alias of `connect_timeout=`),
/// `etcd+txn://...`, and with TLS `etcds://...` / `etcd+txn+tls://...` (or `tls=true`) with
/// `ca=`, `cert=`, `key=` (PEM file paths).
struct EtcdConfig {
  /// Which lock: the FIFO mutex (`etcd://`) or the single-key transaction lock (`etcd+txn://`).
  enum class Mode {
    fifo,  ///< `etcd://`: queue of waiter keys, served in arrival order (default).
    txn,   ///< `etcd+txn://`: one key per lock, taken with a transaction.
  };
  /// The lock kind. Default fifo.
  Mode mode = Mode::fifo;
  /// "host:port" endpoints of the cluster members (IPv6 as "[::1]:2379"). At least one.
  /// Calls fail over between them.
  std::vector<std::string> endpoints{};
  /// Prefix of every lock key. Default "lock/".
  std::string prefix = "lock/";
  /// Longest wait for the first connection when opening (etcd's "dial timeout"; the same name
  /// as `RedisConfig::connect_timeout`). Default 5 s. Must be > 0.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  /// Longest time one request may take (also bounded by the call's Context). Default 5 s.
  /// Must be > 0.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  /// etcd user name; empty (default): no authentication.
  std::string user{};
  /// The user's password (never shown in errors or URLs).
  std::string password{};
  /// Use TLS. Default false. Implied by a non-empty `ca_file`, `cert_file` or `key_file`.
  bool tls = false;
  /// PEM file of the CA that signed the servers' certificates; empty: the system roots.
  std::string ca_file{};
  /// PEM files of the client certificate and its key (for client-certificate auth); both or
  /// neither.
  std::string cert_file{};
  std::string key_file{};
};

/// Opens an etcd store. Blocks until a connection is ready (bounded by `connect_timeout` and
/// `ctx`) and, with a user, authenticates (one round trip). Throws `Error`:
/// `invalid_argument` (no endpoint, bad timeout, unreadable TLS file), `unavailable` (no
/// member answered in time), `auth_failed` (wrong user or password), `timeout`/`cancelled`
/// (from `ctx`).
DLOCK_API Store open(const EtcdConfig& config,
                     const Context& ctx = Context::with_timeout(std::chrono::seconds(10)));

}  // namespace dlock
