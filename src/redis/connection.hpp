// One multiplexed connection to one Redis node. `PushConnection` is driven by an I/O thread
// (Asio, optional TLS); plain-TCP command connections are driven by their callers instead
// (direct_connection.hpp). Both are thin I/O shells over `ConnectionFsm` (connecting,
// handshake, Sentinel lookup, backoff, stale detection) and `Pipeline` (the reply queue).
//
// Any thread may submit requests; they are queued and, while a write is in flight, gathered
// into the next write (automatic pipelining). Replies are matched in order. The connection
// connects on first use and reconnects with backoff after a failure; requests in flight when
// it drops fail with a typed `Failure`, never hang. This layer knows nothing of lock keys or
// steps: it returns failures, and the store names them (router.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "dlock/context.hpp"
#include "redis/connection_options.hpp"
#include "redis/pipeline.hpp"

namespace asio {
class io_context;
}  // namespace asio

namespace dlock::detail::redis {

/// The thread that runs every connection of one store object.
class IoThread {
 public:
  IoThread();
  /// Stops the loop after handlers already posted have run, and joins.
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  asio::io_context& context();
  /// Like the destructor; idempotent.
  void stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A command connection to one node.
class Connection {
 public:
  using clock = std::chrono::steady_clock;
  /// A command connection: the callers do the I/O over plain TCP (direct_connection.hpp);
  /// TLS connections run on the I/O thread of `io`.
  static std::shared_ptr<Connection> create(asio::io_context& io, ConnectionOptions options);
  virtual ~Connection() = default;

  /// Sends `wires` (RESP bytes, written together, in order) and blocks until each has an
  /// outcome (a reply, or a failure: connection lost, connect failed, closed), `deadline`
  /// passes or `stop` is requested. Returns false in the last two cases; outcomes that come
  /// later are dropped.
  virtual bool exchange(std::vector<std::string> wires, std::vector<Outcome>& outcomes,
                        clock::time_point deadline, std::stop_token stop) = 0;
  /// Drops the connection if its oldest request has waited longer than the request timeout
  /// (a server that accepts and never answers). Never blocks.
  virtual void check_stale() = 0;
  /// Drops the connection (requests in flight fail with `unavailable`); the next request
  /// reconnects, asking the sentinels again. Used after -READONLY (a failed-over master).
  virtual void reset() = 0;
  /// Fails everything with `errc::closed`; later requests fail at once. Never blocks.
  virtual void close() = 0;
  /// Whether the connection completed its handshake and is up.
  virtual bool ready() const = 0;
  virtual const ConnectionOptions& options() const = 0;
};

/// A connection driven by an I/O thread that also takes unsolicited pushes (pub/sub).
class PushConnection : public Connection {
 public:
  /// Push messages (pub/sub) are recognised by `is_push` and given to `on_push` on the I/O
  /// thread. `on_lost` runs on the I/O thread after an established connection dropped (the
  /// next submitted request reconnects).
  static std::shared_ptr<PushConnection> create(asio::io_context& io, ConnectionOptions options,
                                                Pipeline::PushFilter is_push = {},
                                                Pipeline::PushHandler on_push = {},
                                                std::function<void()> on_lost = {});

  /// Queues one request (RESP bytes). `handler` runs on the I/O thread exactly once: with the
  /// reply, or with a failure (connection lost, connect failed, closed). Never blocks.
  virtual void submit(std::string wire, ReplyHandler handler) = 0;
};

/// Sends one command and blocks for its reply, bounded by `ctx`, the request timeout (plus
/// the connect timeout while not connected). Returns the reply (a RESP error reply is a
/// reply) or the failure: `timeout`, `cancelled`, `unavailable`, `closed`, `protocol_error`.
Outcome request(Connection& conn, const Context& ctx, const std::vector<std::string_view>& args);

/// Sends several commands at once (one write) and blocks for all replies, like `request`.
/// Returns every reply, or the first failure.
Result<std::vector<RespValue>> request_many(
    Connection& conn, const Context& ctx,
    const std::vector<std::vector<std::string_view>>& commands);

}  // namespace dlock::detail::redis
