// dlock/postgres.hpp: locks in a PostgreSQL database, for teams that already run one.
//
//   dlock::PostgresConfig cfg{.host = "db.internal", .user = "app", .password = "secret",
//                             .database = "jobs"};
//   dlock::Store store = dlock::open(cfg);
//
// The same settings as the URL
// `postgres://[user[:password]@]host[:port][/database][?table=dlock_locks&sslmode=...]`
// (`postgresql://` too). Locks are rows of one table (created on first use); expiry is computed
// from the database server's clock; fencing tokens come from a sequence; waiters are woken by
// LISTEN/NOTIFY, and a holder's own connection hears a force release at once. See
// docs/stores/postgres.md for the schema, the statements and the guarantees.
// Available when dlock was built with the PostgreSQL store (`DLOCK_WITH_POSTGRES`).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "dlock/context.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Settings of a PostgreSQL store object. Fields left empty fall back to libpq's own defaults
/// (its environment variables such as `PGUSER`, and `~/.pgpass` for the password).
struct PostgresConfig {
  /// Host name or address of the server. Default "127.0.0.1".
  std::string host = "127.0.0.1";
  /// TCP port. Default 5432.
  std::uint16_t port = 5432;
  /// Database user; empty: libpq's default (`PGUSER`, else the operating system user).
  std::string user{};
  /// Password (password, md5 or SCRAM authentication); empty: none, or libpq's `~/.pgpass`.
  std::string password{};
  /// Database name; empty: libpq's default (`PGDATABASE`, else the user name).
  std::string database{};
  /// The lock table, `name` or `schema.name` (lower-case letters, digits and `_`, at most 55
  /// characters each); its fencing sequence is `<table>_fencing`. Both are created on first
  /// use when missing. Default "dlock_locks".
  std::string table = "dlock_locks";
  /// Bound on establishing one connection (TCP, TLS, authentication). Default 5 s; > 0.
  std::chrono::milliseconds connect_timeout{5000};
  /// Bound on each statement's reply (also sent to the server as `statement_timeout`); a
  /// connection whose statement takes longer is dropped. Default 5 s; > 0, at most 10 min.
  std::chrono::milliseconds request_timeout{5000};
  /// Most connections the store object opens for callers at once (one per concurrent call,
  /// kept for reuse); callers beyond it wait for a free one. A store object that waits for
  /// locks or holds them opens one more, for LISTEN. Default 16; 1..1000.
  int pool_size = 16;
  /// libpq's `sslmode`: "disable", "allow", "prefer", "require", "verify-ca" or
  /// "verify-full"; empty: libpq's default ("prefer", or `PGSSLMODE`).
  std::string sslmode{};
  /// PEM file of the CA certificates that verify the server (libpq's `sslrootcert`); empty:
  /// libpq's default (`~/.postgresql/root.crt`).
  std::string ssl_ca_file{};
  /// PEM client certificate for certificate authentication (`sslcert`); empty: none.
  std::string ssl_cert_file{};
  /// PEM private key of `ssl_cert_file` (`sslkey`); empty: none.
  std::string ssl_key_file{};
  /// `application_name` shown in `pg_stat_activity`. Default "dlock".
  std::string application_name = "dlock";
};

/// Opens a PostgreSQL store object: connects once, then checks the lock table and its sequence
/// (creating them when missing; a few round trips). Blocks up to `ctx` and
/// `config.connect_timeout` + `config.request_timeout`. Throws `Error`: `invalid_argument`
/// (bad settings; a table of that name that is not a lock table of this shape),
/// `unavailable` (no server, TLS failure, no answer in time), `auth_failed` (wrong user or
/// password, refused by `pg_hba.conf`, or no permission to create or use the table),
/// `not_found` (no such database). Defined only in builds with the PostgreSQL store.
Store open(const PostgresConfig& config,
           const Context& ctx = Context::with_timeout(std::chrono::seconds(10)));

}  // namespace dlock
