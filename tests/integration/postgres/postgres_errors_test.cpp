// Bad input and misconfiguration on the PostgreSQL store, each a typed error in bounded time:
// malformed URLs and settings, wrong credentials (SCRAM), an unknown role, a missing database,
// tables of the wrong shape, missing privileges, an unreachable or silent server, a statement
// stuck behind a row lock, keys the server cannot store; and the pool's bound.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/postgres.hpp"
#include "integration/postgres/shared_server.hpp"
#include "support/tcp_proxy.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

PostgresServer& server() { return shared_postgres().server; }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  for (auto until = clock::now() + timeout; clock::now() < until;) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// The error code of `fn` (0 when it did not throw), checking it took less than `bound`.
errc code_of(const std::function<void()>& fn, std::chrono::milliseconds bound = 5s,
             std::string* what = nullptr) {
  const auto start = clock::now();
  errc out = static_cast<errc>(0);
  try {
    fn();
  } catch (const Error& e) {
    out = static_cast<errc>(e.code().value());
    if (what) *what = e.what();
  }
  EXPECT_LT(clock::now() - start, bound) << "not bounded";
  return out;
}

TEST(PostgresErrors, MalformedUrlsAndSettingsAreInvalidArgumentWithoutConnecting) {
  const std::string base = "postgres://u:p@127.0.0.1:1/db";
  for (const std::string& url :
       {base + "?sslmode=sometimes", base + "?connect_timeout=5", base + "?request_timeout=2",
        base + "?request_timeout=11m", base + "?table=Bad-Name", base + "?table=a.b.c",
        base + "?table=" + std::string(56, 'x'), base + "?pool_size=0", base + "?frob=1",
        std::string("postgres://h1:1,h2:2/db"), std::string("postgres://127.0.0.1:1/db/extra"),
        std::string("postgres://127.0.0.1:0/db"), std::string("postgres:///db")}) {
    EXPECT_EQ(code_of([&] { open(url); }, 1s), errc::invalid_argument) << url;
  }
  EXPECT_EQ(code_of([&] { open(PostgresConfig{.pool_size = 0}); }, 1s), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(PostgresConfig{.connect_timeout = 0ms}); }, 1s),
            errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(PostgresConfig{.table = ""}); }, 1s), errc::invalid_argument);
}

TEST(PostgresErrors, WrongCredentialsAreAuthFailedAndTheRightOnesWork) {
  auto sql = SqlClient::admin();
  sql.exec("CREATE ROLE app_user LOGIN PASSWORD 'right-password'");
  sql.exec("GRANT CREATE ON SCHEMA public TO app_user");
  EXPECT_EQ(sql.exec("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = "
                     "'app_user'"),
            "t");
  std::string what;
  EXPECT_EQ(code_of([&] { open(server().url("", "app_user", "wrong-password")); }, 5s, &what),
            errc::auth_failed);
  EXPECT_NE(what.find("password authentication failed"), std::string::npos) << what;
  EXPECT_EQ(what.find("wrong-password"), std::string::npos) << "the password leaked: " << what;
  EXPECT_EQ(code_of([&] { open(server().url("", "no_such_role", "x")); }), errc::auth_failed);
  EXPECT_EQ(
      code_of([&] {
        open("postgres://app_user@127.0.0.1:" + std::to_string(server().port()) + "/postgres");
      }),
      errc::auth_failed);  // No password at all.
  Store s = open(server().url("table=app_locks", "app_user", "right-password"));
  EXPECT_TRUE(s.acquire({}, "k").held());
}

TEST(PostgresErrors, AMissingDatabaseIsNotFound) {
  std::string what;
  EXPECT_EQ(code_of(
                [&] {
                  open(server().url("", PostgresServer::kAdmin, PostgresServer::kAdminPassword,
                                    "no_such_db"));
                },
                5s, &what),
            errc::not_found);
  EXPECT_NE(what.find("no_such_db"), std::string::npos) << what;
}

TEST(PostgresErrors, ATableOfTheWrongShapeIsRefusedAndNamed) {
  auto sql = SqlClient::admin();
  const std::string cols =
      "token text NOT NULL, mode text NOT NULL, metadata text NOT NULL, acquired_at timestamptz "
      "NOT NULL, expires_at timestamptz NOT NULL, waited_until timestamptz NOT NULL DEFAULT "
      "'-infinity'";
  struct Case {
    std::string table, ddl, says;
  };
  const std::vector<Case> cases = {
      {"shape_missing", "CREATE TABLE shape_missing (name text PRIMARY KEY, token text)",
       "column fencing is missing"},
      {"shape_type",
       "CREATE TABLE shape_type (name text PRIMARY KEY, fencing integer, " + cols + ")",
       "column fencing is integer, not bigint"},
      {"shape_nokey", "CREATE TABLE shape_nokey (name text, fencing bigint, " + cols + ")",
       "no primary key or unique index"},
      {"shape_extra",
       "CREATE TABLE shape_extra (name text PRIMARY KEY, fencing bigint, " + cols +
           ", owner_id int NOT NULL)",
       "extra column owner_id"},
      {"shape_view", "CREATE VIEW shape_view AS SELECT 1 AS x", "not a table"},
      {"shape_seq",
       "CREATE TABLE shape_seq (name text PRIMARY KEY, fencing bigint, " + cols +
           "); CREATE TABLE shape_seq_fencing (x int)",
       "not a sequence"},
  };
  for (const auto& c : cases) {
    sql.exec(c.ddl);
    std::string what;
    EXPECT_EQ(code_of([&] { open(server().url("table=" + c.table)); }, 5s, &what),
              errc::invalid_argument)
        << c.table;
    EXPECT_NE(what.find(c.says), std::string::npos) << what;
  }
  // Extra columns that may stay empty are fine.
  sql.exec("CREATE TABLE shape_ok (name text PRIMARY KEY, fencing bigint NOT NULL, " + cols +
           ", note text, seen int NOT NULL DEFAULT 0)");
  Store s = open(server().url("table=shape_ok"));
  EXPECT_TRUE(s.acquire({}, "k").held());
  EXPECT_TRUE(s.capabilities().durable);
  // An UNLOGGED table works too, but crash recovery empties it: not durable.
  sql.exec(
      "CREATE UNLOGGED TABLE shape_unlogged (name text PRIMARY KEY, fencing bigint NOT "
      "NULL, " +
      cols + ")");
  Store u = open(server().url("table=shape_unlogged"));
  EXPECT_TRUE(u.acquire({}, "k").held());
  EXPECT_FALSE(u.capabilities().durable);
}

TEST(PostgresErrors, MissingPrivilegesAreAuthFailed) {
  auto sql = SqlClient::admin();
  sql.exec("CREATE ROLE weak_user LOGIN PASSWORD 'weak'");
  // PostgreSQL 15 lets nobody create tables in public by default.
  std::string what;
  EXPECT_EQ(code_of([&] { open(server().url("table=weak_new", "weak_user", "weak")); }, 5s, &what),
            errc::auth_failed);
  EXPECT_NE(what.find("permission denied"), std::string::npos) << what;
  // An existing table the user may not write.
  open(server().url("table=weak_existing"));  // Created by the superuser.
  EXPECT_EQ(
      code_of([&] { open(server().url("table=weak_existing", "weak_user", "weak")); }, 5s, &what),
      errc::auth_failed);
  EXPECT_NE(what.find("lacks SELECT, INSERT or UPDATE"), std::string::npos) << what;
  sql.exec("GRANT SELECT, INSERT, UPDATE ON weak_existing TO weak_user");
  EXPECT_EQ(
      code_of([&] { open(server().url("table=weak_existing", "weak_user", "weak")); }, 5s, &what),
      errc::auth_failed);
  EXPECT_NE(what.find("USAGE on sequence"), std::string::npos) << what;
  sql.exec("GRANT USAGE ON SEQUENCE weak_existing_fencing TO weak_user");
  Store s = open(server().url("table=weak_existing", "weak_user", "weak"));
  EXPECT_TRUE(s.acquire({}, "k").held());
}

TEST(PostgresErrors, AnUnreachableOrSilentServerIsUnavailableInBoundedTime) {
  // Nothing listens on the port: refused at once.
  const auto closed_port = free_port();
  EXPECT_EQ(
      code_of([&] { open("postgres://u:p@127.0.0.1:" + std::to_string(closed_port) + "/x"); }, 2s),
      errc::unavailable);
  // A server that accepts TCP but never answers: the connect timeout.
  TcpProxy proxy(server().port());
  proxy.blackhole();
  std::string url = "postgres://u:p@127.0.0.1:" + std::to_string(proxy.port()) +
                    "/postgres?connect_timeout=500ms";
  std::string what;
  EXPECT_EQ(code_of([&] { open(url); }, 3s, &what), errc::unavailable);
  EXPECT_NE(what.find("connect_timeout"), std::string::npos) << what;
  // The caller's deadline, when shorter, is a timeout; its stop token a cancellation.
  EXPECT_EQ(code_of([&] { open(url, Context::with_timeout(200ms)); }, 2s), errc::timeout);
  std::stop_source stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  EXPECT_EQ(code_of([&] { open(url, Context::with_stop(stop.get_token())); }, 2s), errc::cancelled);
  canceller.join();
}

TEST(PostgresErrors, AStatementStuckBehindARowLockIsBoundedAndGrantsNothingLater) {
  const std::string table = "stuck_locks";
  Store s = open(server().url("table=" + table + "&request_timeout=300ms"));
  Store patient = open(server().url("table=" + table + "&request_timeout=2s"));
  s.acquire({}, "busy").release();  // The lock's row exists (free).
  auto blocker = SqlClient::admin();
  blocker.exec("BEGIN");
  blocker.exec("SELECT 1 FROM " + table + " WHERE name = 'busy' FOR UPDATE");
  std::string what;
  // The request timeout: unavailable (the server ends the statement too).
  EXPECT_EQ(code_of([&] { s.try_acquire({}, "busy"); }, 2s, &what), errc::unavailable);
  EXPECT_NE(what.find("busy"), std::string::npos) << what;
  // The caller's deadline, when shorter: timeout.
  EXPECT_EQ(code_of([&] { patient.acquire(Context::with_timeout(200ms), "busy"); }, 2s),
            errc::timeout);
  blocker.exec("COMMIT");
  // Unblocked now, the abandoned statements cannot take the row: past their callers' budget.
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(s.is_locked({}, "busy"));

  // A cancelled caller has no deadline the server could know: its statement may take the row
  // once unblocked, and the store undoes that when its statement_timeout has surely passed.
  blocker.exec("BEGIN");
  blocker.exec("SELECT 1 FROM " + table + " WHERE name = 'busy' FOR UPDATE");
  std::stop_source stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  EXPECT_EQ(code_of([&] { patient.acquire(Context::with_stop(stop.get_token()), "busy"); }, 2s),
            errc::cancelled);
  canceller.join();
  blocker.exec("COMMIT");
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(s.is_locked({}, "busy"));                                   // The orphan grant...
  EXPECT_TRUE(wait_until([&] { return !s.is_locked({}, "busy"); }, 5s));  // ...undone.
  // The broken connections were dropped; the stores work again.
  EXPECT_TRUE(s.try_acquire({}, "busy").has_value());
  EXPECT_TRUE(patient.try_acquire({}, "busy").has_value());
}

TEST(PostgresErrors, KeysTheServerCannotStoreAreInvalidArgumentOthersWork) {
  Store s = open(server().url("table=key_locks"));
  EXPECT_EQ(code_of([&] { s.acquire({}, "bad\xff\xfeutf8"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { s.acquire({}, std::string("nul\0byte", 8)); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { s.acquire({}, "new\nline"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { s.acquire({}, std::string(kMaxKeyBytes + 1, 'k')); }),
            errc::invalid_argument);
  // Quotes, commas, braces, backslashes and multi-byte text are just names, also in the
  // batched renewal (an array literal).
  std::vector<Lease> leases;
  for (const std::string& name :
       {std::string("a\"b"), std::string("c,d"), std::string("{e}"), std::string("f\\g"),
        std::string("NULL"), std::string("ключ-鍵"), std::string(kMaxKeyBytes, 'm')}) {
    leases.push_back(s.acquire({}, name, {.ttl = 600ms, .auto_renew = true}));
    EXPECT_TRUE(s.is_locked({}, name)) << name;
  }
  std::this_thread::sleep_for(2s);
  for (auto& l : leases) EXPECT_TRUE(l.held()) << l.key();
  EXPECT_GE(s.metrics().renewals, 14u);
  EXPECT_EQ(s.list({}, "").size(), leases.size());
}

TEST(PostgresErrors, ThePoolOpensNoMoreConnectionsThanItsSize) {
  Store s = open(server().url("table=pool_locks&pool_size=2&application_name=dlock-pool-test"));
  auto sql = SqlClient::admin();
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        try {
          auto l = s.try_acquire({}, "k" + std::to_string(t));
          if (!l) errors++;
        } catch (const Error&) {
          errors++;
        }
      }
    });
  }
  std::thread monitor([&] {
    while (!done) {
      most = std::max(most.load(), std::stoi(sql.exec("SELECT count(*) FROM pg_stat_activity WHERE "
                                                      "application_name = 'dlock-pool-test'")));
      std::this_thread::sleep_for(5ms);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  monitor.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GE(most.load(), 1);
  EXPECT_LE(most.load(), 3);  // Two for callers, one for LISTEN.
}

}  // namespace
}  // namespace dlock::test
