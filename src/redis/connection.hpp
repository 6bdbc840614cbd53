// One multiplexed connection to one Redis node. `PushConnection` is driven by an I/O thread
// (Asio, optional TLS); plain-TCP command connections are driven by their callers instead
// (direct_connection.hpp).
//
// Any thread may submit requests; they are queued and, while a write is in flight, gathered
// into the next write (automatic pipelining). Replies are matched in order by `Pipeline`.
// The connection connects on first use, runs AUTH / SELECT / PING before any request, and
// reconnects with backoff after a failure; requests in flight when it drops fail with a typed
// `Failure`, never hang.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "dlock/context.hpp"
#include "redis/pipeline.hpp"

namespace asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace asio

namespace dlock::detail::redis {

class SentinelLocator;

/// Where and how to connect.
struct ConnectionOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string user;
  std::string password;
  bool has_password = false;
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  /// TLS: set for rediss://. `tls_name` is the SNI and the name verified in the certificate.
  std::shared_ptr<asio::ssl::context> tls;
  std::string tls_name;
  bool tls_verify = true;
  /// A subscriber connection skips SELECT (pub/sub ignores databases).
  bool subscriber = false;
  /// Sentinel: asked for the master's address before each connect (host/port are then
  /// ignored); the handshake also checks with ROLE that the node is a master.
  std::shared_ptr<SentinelLocator> locator;
};

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
  /// Drops the connection if its oldest request has waited longer than the command timeout
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

/// The commands sent on every new connection before any request: AUTH, SELECT, ROLE (for
/// Sentinel, to check the node is a master) and PING.
std::vector<std::vector<std::string>> handshake_commands(const ConnectionOptions& options);
/// Why the connection must not be used, given the outcome of handshake command `command`.
std::optional<Failure> handshake_failure(const std::string& command, const Outcome& out);

/// Sends one command and blocks for its reply, bounded by `ctx`, the command timeout (plus
/// the connect timeout while not connected). A RESP error reply is returned, not thrown.
/// Throws `Error`: `timeout`, `cancelled`, `unavailable`, `closed`, naming `scheme/key/step`.
RespValue call(Connection& conn, const Context& ctx, std::string_view scheme,
               const std::string& key, const std::string& step,
               const std::vector<std::string_view>& args);

/// Sends several commands at once (one write) and blocks for all replies, like `call`.
std::vector<RespValue> call_many(Connection& conn, const Context& ctx, std::string_view scheme,
                                 const std::string& key, const std::string& step,
                                 const std::vector<std::vector<std::string_view>>& commands);

}  // namespace dlock::detail::redis
