#include "redis/router.hpp"

#include "redis/errors.hpp"
#include "redis/keys.hpp"

namespace dlock::detail::redis {

Router::Router(std::string scheme, std::shared_ptr<Connection> node)
    : scheme_(std::move(scheme)), node_(std::move(node)) {}

Router::Router(std::string scheme, std::unique_ptr<ClusterMap> cluster)
    : scheme_(std::move(scheme)), cluster_(std::move(cluster)) {}

std::shared_ptr<Connection> Router::conn_for(const std::string& lock_key) {
  return cluster_ ? cluster_->for_slot(key_slot(lock_key)) : node_;
}

std::vector<std::shared_ptr<Connection>> Router::masters() {
  if (cluster_) return cluster_->masters();
  return {node_};
}

RespValue Router::run(const Context& ctx, Connection& conn, const std::string& key,
                      std::string_view step, const std::vector<std::string_view>& args) {
  auto r = request(conn, ctx, args);
  if (!r.ok()) raise(scheme_, key, step, r.failure());
  return std::move(r).value();
}

std::vector<RespValue> Router::run_many(
    const Context& ctx, Connection& conn, const std::string& key, std::string_view step,
    const std::vector<std::vector<std::string_view>>& commands) {
  auto r = request_many(conn, ctx, commands);
  if (!r.ok()) raise(scheme_, key, step, r.failure());
  return std::move(r).value();
}

void Router::refresh_slots(const Context& ctx) {
  if (auto why = cluster_->refresh(ctx)) raise(scheme_, "", "cluster slots", *why);
}

void Router::bad_reply(const std::string& key, std::string_view step) const {
  raise(scheme_, key, step, Failure{errc::protocol_error, "unexpected reply shape"});
}

void Router::server_error(const std::string& key, std::string_view step,
                          const RespValue& reply) const {
  raise(scheme_, key, step, server_failure(reply.str));
}

// One command, preceded by ASKING after an ASK redirect.
RespValue Router::send(const Context& ctx, Connection& conn, const std::string& key,
                       std::string_view step, const std::vector<std::string_view>& cmd,
                       bool asking) {
  if (!asking) return run(ctx, conn, key, step, cmd);
  auto replies = run_many(ctx, conn, key, step, {{"ASKING"}, cmd});
  return std::move(replies.back());
}

RespValue Router::eval(const Context& ctx, const Script& s, const std::string& key,
                       std::string_view step, std::vector<std::string_view> keys,
                       std::vector<std::string_view> args) {
  const std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> cmd{"EVALSHA", s.sha1, nkeys};
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  std::shared_ptr<Connection> conn = conn_for(std::string(keys.front()));
  bool asking = false;
  RespValue r;
  for (int hop = 0; hop < 5; ++hop) {
    r = send(ctx, *conn, key, step, cmd, asking);
    if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
      auto full = cmd;
      full[0] = "EVAL";
      full[1] = s.body;
      r = send(ctx, *conn, key, step, full, asking);
    }
    const bool moved = r.str.starts_with("MOVED "), ask = r.str.starts_with("ASK ");
    if (!r.is_error() || !cluster_ || (!moved && !ask)) break;
    // "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>"; an empty host is the node
    // that answered.
    auto target = std::string_view(r.str).substr(r.str.rfind(' ') + 1);
    auto colon = target.rfind(':');
    std::string host(target.substr(0, colon));
    auto port = static_cast<std::uint16_t>(parse_u64(target.substr(colon + 1)));
    if (host.empty()) host = conn->options().host;
    if (moved) refresh_slots(ctx);
    conn = cluster_->node(host, port);
    asking = ask;
  }
  if (r.is_error()) {
    // A master that became a replica (failover): reconnect, asking the sentinels again.
    if (r.str.starts_with("READONLY")) conn->reset();
    server_error(key, step, r);
  }
  return r;
}

std::vector<RespValue> Router::eval_batch(const Context& ctx, Connection& conn,
                                          const Script& script, const std::string& key,
                                          std::string_view step, std::size_t nkeys,
                                          const std::vector<std::vector<std::string_view>>& items) {
  const std::string n = std::to_string(nkeys);
  std::vector<std::vector<std::string_view>> cmds;
  cmds.reserve(items.size());
  for (auto& item : items) {
    auto& cmd = cmds.emplace_back(std::vector<std::string_view>{"EVALSHA", script.sha1, n});
    cmd.insert(cmd.end(), item.begin(), item.end());
  }
  auto replies = run_many(ctx, conn, key, step, cmds);
  // A server that lost its script cache (restart) answers NOSCRIPT to all: load the script
  // once and send the batch again.
  if (!replies.empty() && replies.front().is_error() &&
      replies.front().str.starts_with("NOSCRIPT")) {
    run(ctx, conn, key, step, {"SCRIPT", "LOAD", script.body});
    replies = run_many(ctx, conn, key, step, cmds);
  }
  return replies;
}

void Router::close() noexcept {
  if (node_) node_->close();
  if (cluster_) cluster_->close();
}

}  // namespace dlock::detail::redis
