// The one PostgreSQL server of the integration test binary (started on first use, stopped at
// exit), with TLS on (plain connections are accepted too), and a libpq client for the tests'
// own SQL.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "integration/postgres/pg_server.hpp"
#include "integration/redis/test_certs.hpp"

namespace dlock::test {

struct SharedPostgres {
  TempDir dir{"dlock-postgres-certs"};
  TestCerts certs{dir.path()};
  // Also on 127.0.0.2, an address the certificate does not name (for the name check).
  PostgresServer server{PostgresServer::Options{
      certs.server_cert, certs.server_key, {"listen_addresses = '127.0.0.1,127.0.0.2'"}}};
};

/// The binary's server (TLS certificates in `certs`).
SharedPostgres& shared_postgres();

/// A blocking libpq connection for test setup and checks (not dlock's code).
class SqlClient {
 public:
  explicit SqlClient(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c_);
      PQfinish(c_);
      throw std::runtime_error("test connection failed: " + msg);
    }
  }
  /// As the superuser to database `db` of the shared server.
  static SqlClient admin(const std::string& db = "postgres") {
    auto& s = shared_postgres().server;
    return SqlClient(
        "host=127.0.0.1 port=" + std::to_string(s.port()) + " user=" + PostgresServer::kAdmin +
        " password=" + PostgresServer::kAdminPassword + " dbname=" + db + " sslmode=disable");
  }
  SqlClient(SqlClient&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  ~SqlClient() {
    if (c_) PQfinish(c_);
  }

  /// Notifications received so far (this client LISTENs through `exec`).
  int notifications() {
    PQconsumeInput(c_);
    int n = 0;
    while (PGnotify* x = PQnotifies(c_)) {
      ++n;
      PQfreemem(x);
    }
    return n;
  }

  /// Runs `sql`; throws with the server's message on failure. Returns the first column of
  /// the first row ("" when none).
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("SQL failed: " + sql + ": " + msg);
    }
    std::string out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
  }

 private:
  PGconn* c_;
};

}  // namespace dlock::test
