// dlock/zookeeper.hpp: exclusive locks in Apache ZooKeeper, with the node layout of Curator's
// InterProcessMutex and kazoo's `Lock` (so dlock and kazoo clients exclude each other).
//
//   dlock::ZooKeeperConfig cfg{.hosts = "zk1:2181,zk2:2181,zk3:2181", .root = "/locks"};
//   dlock::Store store = dlock::open(cfg);
//
// The same settings as the URL
// `zk://[user:password@]host:port[,host:port...][/root][?session_timeout=10s&connect_timeout=5s
// &request_timeout=5s]`. A lock `name` is the container node `<root>/<name>`; each contender
// is an ephemeral sequential child `<token>__lock__<seq>` holding its owner metadata; the
// lowest sequence holds and each waiter watches only its predecessor. The fencing token is the
// holder node's czxid. ZooKeeper has no TTL per node: a node lives as long as the client's
// session, and dlock's own client deletes a grant's node when its TTL passes without renewal.
// `zks://` (TLS) is refused: Debian's C client is built without TLS. See
// docs/stores/zookeeper.md. Available when dlock was built with `DLOCK_WITH_ZOOKEEPER`.
#pragma once

#include <chrono>
#include <string>

#include "dlock/context.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Settings of a ZooKeeper store object.
struct ZooKeeperConfig {
  /// The ensemble as ZooKeeper's connect string without a chroot: `host:port[,host:port...]`.
  /// Must not be empty. Default "127.0.0.1:2181".
  std::string hosts = "127.0.0.1:2181";
  /// The path under which lock nodes live (`<root>/<key>`); created, with its parents, when
  /// missing. Absolute, no trailing '/', not under `/zookeeper`. Default "/dlock".
  std::string root = "/dlock";
  /// The ZooKeeper session timeout asked of the server (which clamps it to its own
  /// min/maxSessionTimeout, by default 2 and 20 ticks). A holder whose process dies or is cut
  /// off loses its locks once the server expires its session. Default 10 s; > 0.
  std::chrono::milliseconds session_timeout{10000};
  /// Bound on establishing a session (any server of `hosts`). Default 5 s; > 0.
  std::chrono::milliseconds connect_timeout{5000};
  /// Bound on each request's reply. Default 5 s; > 0, at most 10 min.
  std::chrono::milliseconds request_timeout{5000};
  /// Digest authentication user (`addauth digest user:password`); empty: none. With a user,
  /// the nodes dlock creates are readable and writable only by that user (ZooKeeper's
  /// `CREATOR_ALL_ACL`); without one, by anyone (`OPEN_ACL_UNSAFE`).
  std::string user{};
  /// The digest user's password (only with `user`).
  std::string password{};
};

/// Opens a ZooKeeper store object: establishes a session, adds the digest credentials and
/// creates `config.root` when missing (a round trip per path component, then one read of the
/// root). Blocks up to `ctx`; establishing the session is also bounded by
/// `config.connect_timeout` and each request by `config.request_timeout`. Throws `Error`:
/// `invalid_argument` (bad settings), `unsupported` (`zks://` through `dlock::open`),
/// `unavailable` (no server answered in time, a host name that does not resolve), `timeout` or
/// `cancelled` (`ctx` ended first), `auth_failed` (the server refused the credentials, or the
/// root's ACL refuses this user). Defined only in builds with the ZooKeeper store.
Store open(const ZooKeeperConfig& config,
           const Context& ctx = Context::with_timeout(std::chrono::seconds(10)));

}  // namespace dlock
