// The I/O-free state machine of one Redis connection: how it gets up (Sentinel master lookup,
// TCP/TLS connect, handshake: AUTH, SELECT, ROLE, CLIENT SETNAME, PING), how long each part
// may take, the backoff between failed attempts, and when an established connection counts as
// stale. The I/O shells (the Asio `PushConnection`, the caller-driven `DirectConnection`) do
// what its steps say and report what happened; it does no I/O, reads no clock and is tested
// without a network (tests/unit/redis_connection_fsm_test.cpp). Not thread-safe: its shell
// serializes the calls.
//
// One attempt, as steps the shell performs:
//   start -> [wait] -> connect -> write (then read) -> read... -> ready | failed
// With Sentinel, the attempt first asks the sentinels in turn (connect -> write -> read, one
// sentinel after another until one names the master), then connects to the master.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "redis/connection_options.hpp"
#include "redis/result.hpp"

namespace dlock::detail::redis {

class ConnectionFsm {
 public:
  using clock = std::chrono::steady_clock;

  /// What the shell does next.
  struct Step {
    enum class Kind {
      wait,     ///< Back off: call `start` again at `deadline`.
      connect,  ///< Close any socket; open TCP to `target` (then TLS if `tls`, verifying
                ///< `tls_name`); report `on_connected` or `on_io_error`.
      write,    ///< Write `wire`, then read; report bytes with `on_bytes`.
      read,     ///< Keep reading; report bytes with `on_bytes`.
      ready,    ///< Up: serve requests (bytes from now on are replies to them).
      failed,   ///< The attempt failed with `failure`: close the socket and fail the queued
                ///< requests. A later `start` retries after the backoff.
    };
    Kind kind = Kind::failed;
    /// connect/write/read: call `on_timeout` when it passes; wait: when to `start` again.
    clock::time_point deadline{};
    Address target{};        ///< connect
    bool tls = false;        ///< connect: TLS over the TCP connection.
    std::string tls_name{};  ///< connect: the name for SNI and certificate verification.
    std::string wire{};      ///< write: the bytes.
    Failure failure{};       ///< failed
  };

  /// The name the handshake gives every connection (`CLIENT SETNAME`, seen in CLIENT LIST).
  static constexpr const char* kClientName = "dlock";
  /// An idle connection unused this long is checked for a close by the server before a
  /// request is written into it (`probe_due`).
  static constexpr std::chrono::milliseconds kProbeIdleAfter{20};

  explicit ConnectionFsm(ConnectionOptions options);

  /// Begins an attempt: `wait` while the backoff of the last failure lasts, else `connect`
  /// (to a sentinel, or to the node). Abandons an attempt in progress without counting it.
  Step start(clock::time_point now);
  /// The socket of the last `connect` step is up (TCP, and TLS if asked).
  Step on_connected(clock::time_point now);
  /// Bytes read after a `write` step.
  Step on_bytes(const char* data, std::size_t size, clock::time_point now);
  /// The socket failed while connecting, writing or reading (also: closed by the server).
  Step on_io_error(const Failure& why, clock::time_point now);
  /// The deadline of the current step passed.
  Step on_timeout(clock::time_point now);

  /// The caller cut the attempt short (its own deadline, a stop): no backoff is counted.
  void abort() noexcept;
  /// The established connection dropped: the next attempt starts at once (after a failed
  /// one it backs off).
  void on_dropped(clock::time_point now) noexcept;
  /// A reply arrived on the established connection.
  void on_reply(clock::time_point now) noexcept { last_reply_ = now; }

  /// Whether the connection is established (the handshake succeeded and it did not drop).
  bool ready() const noexcept { return phase_ == Phase::ready; }
  /// Whether an attempt is in progress.
  bool connecting() const noexcept { return phase_ == Phase::lookup || phase_ == Phase::node; }
  /// Failed attempts in a row.
  int failures() const noexcept { return failures_; }
  /// When the next attempt may start.
  clock::time_point retry_at() const noexcept { return retry_at_; }

  /// Why the established connection must be dropped: its oldest unanswered request, written
  /// at `oldest_sent`, waited the request timeout (a server that accepts and never answers).
  std::optional<Failure> stale(std::optional<clock::time_point> oldest_sent,
                               clock::time_point now) const;
  /// Whether the idle established connection should be checked (a non-blocking poll) for a
  /// close by the server (its `timeout`, a restart) before a request is written into it, so
  /// the request goes out on a fresh connection instead of failing.
  bool probe_due(bool requests_in_flight, clock::time_point now) const noexcept;

  /// The handshake on every node connection: AUTH, SELECT, ROLE (Sentinel), CLIENT SETNAME,
  /// PING.
  static std::vector<std::vector<std::string>> handshake_commands(const ConnectionOptions& o);

  const ConnectionOptions& options() const noexcept { return opts_; }

 private:
  enum class Phase { idle, lookup, node, ready };
  Step connect_step(const Address& target, clock::time_point deadline) const;
  Step next_sentinel(clock::time_point now);
  Step connect_node(const Address& node, clock::time_point now);
  Step sentinel_trouble(const std::string& what, clock::time_point now);
  Step fail(Failure why, clock::time_point now);
  Step exchange(std::vector<std::vector<std::string>> commands);
  Step on_sentinel_reply(const RespValue& reply, clock::time_point now);
  std::optional<Failure> check_handshake_reply(const std::string& command,
                                               const RespValue& reply) const;

  const ConnectionOptions opts_;
  Phase phase_ = Phase::idle;
  int failures_ = 0;
  clock::time_point retry_at_{};
  clock::time_point last_reply_{};
  clock::time_point deadline_{};  // Of the current sentinel's lookup, or of the node attempt.
  // The lookup: the sentinels in the order asked, the next one, the one asked now, and what
  // went wrong at each so far.
  std::vector<Address> order_;
  std::size_t next_ = 0;
  Address asked_{};
  std::chrono::milliseconds share_{};  // Each sentinel's part of the connect timeout.
  std::string lookup_errors_;
  // The exchange in progress: its parser and the commands whose replies are awaited.
  std::optional<RespParser> parser_;
  std::vector<std::string> awaited_;
  std::size_t answered_ = 0;
};

}  // namespace dlock::detail::redis
