// One libpq connection driven by its caller: connect and every statement wait on the socket
// with poll(2), bounded by the call's Context (deadline and stop token) and by the store's own
// timeouts. A statement that runs out of time leaves the connection broken (it is dropped, and
// the server's statement_timeout ends the statement there).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dlock/context.hpp"

namespace dlock::detail::postgres {

/// A statement prepared on each connection on its first use there.
struct Statement {
  int id = 0;        ///< Dense index among the store's statements (0, 1, ...).
  std::string name;  ///< Its name on the server, e.g. "dlock_acquire".
  std::string sql;   ///< The text, with $1.. parameters.
  int params = 0;    ///< Number of parameters.
};

/// A statement's result (owns the PGresult).
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r, &PQclear) {}
  /// Rows returned.
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  /// Rows affected by an INSERT/UPDATE/DELETE (0 for others).
  long affected() const;
  /// Whether the value is SQL NULL.
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  /// The value as text ("" for NULL).
  std::string text(int row, int col) const;
  /// The value as an integer (0 for NULL or non-numbers).
  long long integer(int row, int col) const;
  /// The value is the text "t" (a boolean true).
  bool boolean(int row, int col) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_{nullptr, &PQclear};
};

/// Where to connect and the bounds of each call.
struct ConnectParams {
  std::vector<std::pair<std::string, std::string>> params;  ///< libpq keyword/value pairs.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{5000};
};

class Connection {
 public:
  using clock = std::chrono::steady_clock;

  /// Connects (TCP, TLS, authentication), bounded by `ctx` and `p.connect_timeout`. Throws
  /// `Error`: `auth_failed`, `not_found` (no such database), `unavailable`, `timeout` or
  /// `cancelled` (from `ctx`); `key` and `step` name the call in the error.
  static std::unique_ptr<Connection> connect(const ConnectParams& p, const Context& ctx,
                                             const std::string& key, const char* step);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs `s` with text parameters `args` (preparing it first on this connection), bounded by
  /// `ctx` and the request timeout. Throws `Error` (the SQLSTATE's code, or `unavailable` /
  /// `timeout` / `cancelled`; a connection failure or timeout also marks this one broken).
  Result run(const Statement& s, const std::vector<std::string>& args, const Context& ctx,
             const std::string& key, const char* step);
  /// Runs a statement without parameters through the simple query protocol (several
  /// statements separated by ';' run in one implicit transaction). Throws like `run`.
  Result query(const std::string& sql, const Context& ctx, const std::string& key,
               const char* step);

  /// Whether the connection can take a statement: not broken, idle, and nothing arrived on
  /// its socket while it was idle (the server closing it; checked without blocking).
  bool usable();
  /// Whether a failure or timeout left it unusable.
  bool broken() const { return broken_; }

  /// For the listener, which drives its connection itself.
  PGconn* native() const { return conn_; }
  /// The request timeout this connection was made with.
  std::chrono::milliseconds request_timeout() const { return request_timeout_; }

 private:
  Connection(PGconn* c, std::chrono::milliseconds request_timeout);
  enum class Wait { ready, timeout, stopped, lost };
  // Waits for `events` on the socket until `limit` or a stop (our eventfd is written by a
  // stop callback).
  Wait wait_socket(short events, clock::time_point limit, const std::stop_token& stop);
  // Flushes the sent request and collects every result; throws on failure.
  Result collect(const Context& ctx, clock::time_point limit, const std::string& key,
                 const char* step);
  [[noreturn]] void fail_io(const Context& ctx, Wait why, const std::string& key, const char* step);

  PGconn* conn_;
  int wake_fd_ = -1;
  std::chrono::milliseconds request_timeout_;
  std::vector<bool> prepared_;
  bool broken_ = false;
};

}  // namespace dlock::detail::postgres
