// Where the store's commands go, and the one door through which it reaches its connections.
//
// A lock's commands go to the one node (single, Sentinel) or to the master of the lock key's
// slot (Cluster). Scripts run with EVALSHA, and EVAL after -NOSCRIPT (a server that lost its
// script cache); in a cluster -MOVED reloads the slot map and retries on the named node, -ASK
// retries there once after ASKING; -READONLY (a master that became a replica) resets the
// connection so that the next request asks the sentinels again. Every failure leaves here as
// a `dlock::Error` naming the store, the lock key and the step: the connection layer below
// knows none of them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "redis/cluster.hpp"
#include "redis/connection.hpp"
#include "redis/scripts.hpp"

namespace dlock::detail::redis {

class Router {
 public:
  /// One node (single or Sentinel).
  Router(std::string scheme, std::shared_ptr<Connection> node);
  /// A cluster.
  Router(std::string scheme, std::unique_ptr<ClusterMap> cluster);

  const std::string& scheme() const noexcept { return scheme_; }
  /// The cluster's map, or nullptr for one node.
  ClusterMap* cluster() const noexcept { return cluster_.get(); }
  /// The connection of the node that holds `lock_key`.
  std::shared_ptr<Connection> conn_for(const std::string& lock_key);
  /// The connections of every master (one for a single node).
  std::vector<std::shared_ptr<Connection>> masters();

  /// One command on `conn`; a RESP error reply is returned. Throws `Error` naming `key` and
  /// `step` when there is no reply.
  RespValue run(const Context& ctx, Connection& conn, const std::string& key, std::string_view step,
                const std::vector<std::string_view>& args);
  /// Several commands in one write; every reply. Throws like `run`.
  std::vector<RespValue> run_many(const Context& ctx, Connection& conn, const std::string& key,
                                  std::string_view step,
                                  const std::vector<std::vector<std::string_view>>& commands);
  /// Runs `script` on the node of `keys.front()` (the lock key), following redirects; a
  /// server error reply is thrown as `Error`. Throws `Error`.
  RespValue eval(const Context& ctx, const Script& script, const std::string& key,
                 std::string_view step, std::vector<std::string_view> keys,
                 std::vector<std::string_view> args);
  /// Runs `script` once per item on `conn`, all in one write: each item is the script's KEYS
  /// (`nkeys` of them) then its ARGV. Loads the script once and sends again if the server
  /// lost its cache (-NOSCRIPT). Error replies of single items (MOVED, READONLY...) are
  /// returned for the caller to retry on the single path. Throws `Error`.
  std::vector<RespValue> eval_batch(const Context& ctx, Connection& conn, const Script& script,
                                    const std::string& key, std::string_view step,
                                    std::size_t nkeys,
                                    const std::vector<std::vector<std::string_view>>& items);
  /// Reloads the cluster's slot map. Throws `Error`.
  void refresh_slots(const Context& ctx);
  /// Throws the `Error` for a reply of the wrong shape.
  [[noreturn]] void bad_reply(const std::string& key, std::string_view step) const;
  /// Throws the `Error` for a server error reply.
  [[noreturn]] void server_error(const std::string& key, std::string_view step,
                                 const RespValue& reply) const;

  /// Closes every connection.
  void close() noexcept;

 private:
  RespValue send(const Context& ctx, Connection& conn, const std::string& key,
                 std::string_view step, const std::vector<std::string_view>& cmd, bool asking);

  const std::string scheme_;
  std::shared_ptr<Connection> node_;     // One node.
  std::unique_ptr<ClusterMap> cluster_;  // Or a cluster.
};

}  // namespace dlock::detail::redis
