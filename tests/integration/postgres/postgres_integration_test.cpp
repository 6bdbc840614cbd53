// The PostgreSQL store against a real server: opening from a config or a URL, the table and
// sequence it creates (and its schema), rows of freed locks kept for fencing and cleaned up
// later, a dropped sequence, waiting by LISTEN/NOTIFY rather than polling, a force release
// reported to the holder at once, expiry on the server's clock, a lock surviving a crash of
// the server, waiters after their listen connection was cut, and TLS with verify-full.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/postgres.hpp"
#include "integration/postgres/shared_server.hpp"
#include "postgres/statements.hpp"
#include "support/tcp_proxy.hpp"

namespace dlock::test {

SharedPostgres& shared_postgres() {
  static SharedPostgres shared;
  return shared;
}

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

std::string unique(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
}

PostgresServer& server() { return shared_postgres().server; }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  for (auto until = clock::now() + timeout; clock::now() < until;) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(Postgres, OpensFromAConfigOrEitherUrlSchemeAndRedactsThePassword) {
  PostgresConfig cfg{.port = server().port(),
                     .user = PostgresServer::kAdmin,
                     .password = PostgresServer::kAdminPassword,
                     .database = "postgres",
                     .table = "cfg_locks",
                     .pool_size = 4};
  Store a = open(cfg);
  EXPECT_EQ(a.scheme(), "postgres");
  EXPECT_EQ(a.url().find(PostgresServer::kAdminPassword), std::string::npos) << a.url();
  EXPECT_NE(a.url().find("table=cfg_locks"), std::string::npos) << a.url();
  std::string alias = server().url("table=cfg_locks");
  alias.replace(0, std::string("postgres").size(), "postgresql");
  Store b = open(alias);
  EXPECT_EQ(b.url().find(PostgresServer::kAdminPassword), std::string::npos) << b.url();
  Lease l = a.acquire({}, "job");
  EXPECT_TRUE(b.is_locked({}, "job"));  // Same table through either way of opening.
  EXPECT_FALSE(b.try_acquire({}, "job").has_value());
}

TEST(Postgres, CreatesTheDocumentedTableAndSequenceOnFirstUse) {
  const std::string table = unique("fresh");
  auto sql = SqlClient::admin();
  EXPECT_EQ(sql.exec("SELECT to_regclass('" + table + "') IS NULL"), "t");
  Store s = open(server().url("table=" + table));
  EXPECT_EQ(sql.exec("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || "
                     "CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) "
                     "FROM pg_attribute WHERE attrelid = '" +
                     table + "'::regclass AND attnum > 0 AND NOT attisdropped"),
            "name text not null, token text not null, fencing bigint not null, mode text not "
            "null, metadata text not null, acquired_at timestamp with time zone not null, "
            "expires_at timestamp with time zone not null, waited_until timestamp with time "
            "zone not null");
  EXPECT_EQ(sql.exec("SELECT relkind FROM pg_class WHERE oid = '" + table + "_fencing'::regclass"),
            "S");
  EXPECT_EQ(sql.exec("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '" + table +
                     "'::regclass AND indisprimary"),
            "CREATE UNIQUE INDEX " + table + "_pkey ON public." + table + " USING btree (name)");
  EXPECT_EQ(sql.exec("SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = "
                     "a.attcollation WHERE a.attrelid = '" +
                     table + "'::regclass AND a.attname = 'name'"),
            "C");  // Byte order, whatever the database's locale.
  // A schema-qualified table lands in that schema.
  sql.exec("CREATE SCHEMA IF NOT EXISTS locks");
  Store q = open(server().url("table=locks." + table));
  EXPECT_EQ(sql.exec("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                     "c.relnamespace WHERE n.nspname = 'locks' AND c.relname IN ('" +
                     table + "', '" + table + "_fencing')"),
            "2");
  // The row says who holds the lock, with what token and until when (the server's clock).
  Lease l = s.acquire({}, "row", {.ttl = 20s, .metadata = "nightly"});
  EXPECT_EQ(sql.exec("SELECT fencing FROM " + table + " WHERE name = 'row'"),
            std::to_string(l.fencing_token()));
  EXPECT_EQ(sql.exec("SELECT mode FROM " + table + " WHERE name = 'row'"), "exclusive");
  EXPECT_NE(sql.exec("SELECT metadata FROM " + table + " WHERE name = 'row'").find("nightly"),
            std::string::npos);
  EXPECT_EQ(sql.exec("SELECT abs(extract(epoch FROM expires_at - acquired_at) - 20) < 0.01 FROM " +
                     table + " WHERE name = 'row'"),
            "t");
  EXPECT_EQ(sql.exec("SELECT abs(extract(epoch FROM expires_at - (clock_timestamp() + "
                     "interval '20 seconds'))) < 2 FROM " +
                     table + " WHERE name = 'row'"),
            "t");
}

TEST(Postgres, FreedRowsStaySoTokensGrowAndLongFreedOnesAreDeleted) {
  const std::string table = unique("kept");
  Store s = open(server().url("table=" + table));
  auto sql = SqlClient::admin();
  std::uint64_t first = 0;
  {
    Lease l = s.acquire({}, "k");
    first = l.fencing_token();
  }
  // Released: the row stays, marked free, so the next grant's token comes after it.
  EXPECT_EQ(sql.exec("SELECT expires_at = '-infinity' FROM " + table + " WHERE name = 'k'"), "t");
  EXPECT_FALSE(s.is_locked({}, "k"));
  EXPECT_TRUE(s.list({}, "").empty());
  Lease again = s.acquire({}, "k");
  EXPECT_GT(again.fencing_token(), first);
  again.release();
  // A row free for longer than the retention is deleted by a store that listens (a few
  // seconds after its listen connection comes up).
  sql.exec("UPDATE " + table + " SET expires_at = clock_timestamp() - interval '2 hours'");
  Store waiter = open(server().url("table=" + table));
  Lease trigger = waiter.acquire({}, "other");  // Starts its listener.
  EXPECT_TRUE(wait_until(
      [&] { return sql.exec("SELECT count(*) FROM " + table + " WHERE name = 'k'") == "0"; }, 20s));
  EXPECT_EQ(sql.exec("SELECT count(*) FROM " + table + " WHERE name = 'other'"), "1");
}

TEST(Postgres, ADroppedSequenceIsMadeAgainAboveEveryTokenGiven) {
  const std::string table = unique("seq");
  std::uint64_t last = 0;
  {
    Store s = open(server().url("table=" + table));
    for (int i = 0; i < 5; ++i) last = s.acquire({}, "k" + std::to_string(i)).fencing_token();
  }
  SqlClient::admin().exec("DROP SEQUENCE " + table + "_fencing");
  Store s = open(server().url("table=" + table));
  EXPECT_GT(s.acquire({}, "k0").fencing_token(), last);
}

TEST(Postgres, AWaiterIsWokenByTheReleaseNotByPolling) {
  const std::string url = server().url("table=wake_locks");
  Store holder_store = open(url), waiter_store = open(url);
  Lease held = holder_store.acquire({}, "hot", {.ttl = 30s});
  std::atomic<bool> got{false};
  clock::time_point acquired_at;
  std::thread waiter([&] {
    // Without a notification this waiter would sleep 30 s between attempts.
    Lease l = waiter_store.acquire(Context::with_timeout(20s), "hot",
                                   {.ttl = 10s, .retry = {.delay = 30s, .max_delay = 30s}});
    acquired_at = clock::now();
    got = true;
  });
  // The waiter LISTENs on the lock's channel before its second attempt.
  auto sql = SqlClient::admin();
  ASSERT_TRUE(wait_until(
      [&] {
        return sql.exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dlock' "
                   "AND query LIKE 'LISTEN dlock_%'") != "0";
      },
      10s));
  std::this_thread::sleep_for(200ms);  // Its attempt after the LISTEN has lost by now.
  EXPECT_FALSE(got.load());
  const auto released_at = clock::now();
  held.release();
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_LT(acquired_at - released_at, 2s);
  EXPECT_GE(waiter_store.metrics().notifications, 1u);
  EXPECT_LE(waiter_store.metrics().acquire_attempts, 3u);
}

TEST(Postgres, AReleaseNotifiesOnlyWhenSomebodyWaits) {
  // A NOTIFY signals every listening session of the database: releases nobody waits for
  // send none.
  const std::string url = server().url("table=quiet_locks");
  Store s = open(url), other = open(url);
  auto sql = SqlClient::admin();
  const auto oid =
      static_cast<std::uint32_t>(std::stoul(sql.exec("SELECT 'quiet_locks'::regclass::oid")));
  sql.exec("LISTEN " + detail::postgres::channel_name(oid, "q"));
  for (int i = 0; i < 5; ++i) s.acquire({}, "q").release();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(sql.notifications(), 0);
  // A waiter marks the row; the release then announces itself.
  Lease held = s.acquire({}, "q", {.ttl = 30s});
  std::thread waiter([&] {
    other.acquire(Context::with_timeout(20s), "q", {.retry = {.delay = 30s, .max_delay = 30s}});
  });
  ASSERT_TRUE(wait_until(
      [&] {
        return sql.exec(
                   "SELECT waited_until > clock_timestamp() FROM quiet_locks WHERE name = "
                   "'q'") == "t";
      },
      10s));
  const auto released_at = clock::now();
  held.release();
  waiter.join();
  EXPECT_LT(clock::now() - released_at, 2s);  // Woken by the release, not its 30 s backoff.
  EXPECT_TRUE(wait_until([&] { return sql.notifications() >= 1; }, 2s));
}

TEST(Postgres, AForceReleaseReachesTheHolderWithinASecond) {
  const std::string url = server().url("table=force_locks");
  Store s = open(url);
  // TTL 30 s and no renewal: only the store's report can tell the holder this soon.
  Lease l = s.acquire({}, "victim", {.ttl = 30s});
  std::atomic<int> reason{-1};
  l.on_lost([&](const LossInfo& i) { reason = static_cast<int>(i.reason); });
  std::this_thread::sleep_for(300ms);  // The holders channel is listened by now.
  const auto forced_at = clock::now();
  ASSERT_TRUE(open(url).force_release({}, "victim"));
  auto lost = l.lost_token();
  EXPECT_TRUE(wait_until([&] { return lost.stop_requested(); }, 1s));
  EXPECT_LT(clock::now() - forced_at, 1s);
  EXPECT_TRUE(wait_until([&] { return reason.load() >= 0; }, 1s));
  EXPECT_EQ(reason.load(), static_cast<int>(LossReason::store_reported));
  EXPECT_FALSE(l.held());
  EXPECT_EQ(l.release().status, ReleaseStatus::not_held);
  // The report names the token: another holder of the table hears it and keeps its lock.
  Lease other = s.acquire({}, "bystander", {.ttl = 30s});
  Lease again = s.acquire({}, "victim", {.ttl = 30s});
  ASSERT_TRUE(open(url).force_release({}, "victim"));
  EXPECT_TRUE(wait_until([&] { return again.lost(); }, 1s));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(other.lost());
  EXPECT_TRUE(other.held());
}

TEST(Postgres, AHeldLockSurvivesACrashOfTheServer) {
  const std::string url = server().url("table=durable_locks");
  Store s = open(url);
  Lease l = s.acquire({}, "kept", {.ttl = 60s});
  const auto token = l.fencing_token();
  server().kill();  // SIGKILL to the server and every backend: crash recovery on start.
  server().start();
  // The row is still there after recovery; the holder renews on fresh connections (its
  // pooled ones died with the server and are replaced on checkout, not failed on).
  Store other = open(url);
  auto info = other.inspect({}, "kept");
  EXPECT_TRUE(info.held);
  EXPECT_EQ(info.fencing_token, token);
  EXPECT_FALSE(other.try_acquire({}, "kept").has_value());
  EXPECT_NO_THROW(l.renew({}, 60s));
  EXPECT_TRUE(l.held());
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  EXPECT_TRUE(other.try_acquire({}, "kept").has_value());
}

TEST(Postgres, AWaiterWhoseListenConnectionWasCutIsStillServed) {
  TcpProxy proxy(server().port());
  std::string url = server().url("table=cut_locks");
  const std::string from = ":" + std::to_string(server().port());
  url.replace(url.find(from), from.size(), ":" + std::to_string(proxy.port()));
  Store direct = open(server().url("table=cut_locks"));
  Store behind = open(url);
  Lease held = direct.acquire({}, "k", {.ttl = 30s});
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    Lease l = behind.acquire(Context::with_timeout(30s), "k",
                             {.ttl = 10s, .retry = {.delay = 20s, .max_delay = 20s}});
    got = true;
  });
  std::this_thread::sleep_for(500ms);
  proxy.drop();  // Every connection behind the proxy dies, the LISTEN one included.
  std::this_thread::sleep_for(300ms);
  proxy.restore();
  std::this_thread::sleep_for(1500ms);  // The listener reconnects and LISTENs again.
  const auto released_at = clock::now();
  held.release();
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_LT(clock::now() - released_at, 5s);  // Woken, not after its 20 s backoff.
}

TEST(Postgres, TlsWithVerifyFullAndTheTestCa) {
  auto& certs = shared_postgres().certs;
  const std::string tls = "table=tls_locks&sslmode=verify-full&sslrootcert=" + certs.ca.string() +
                          "&application_name=dlock-tls-test";
  Store s = open(server().url(tls));
  Lease l = s.acquire({}, "secure");
  EXPECT_TRUE(s.is_locked({}, "secure"));
  // The server sees TLS on this store's connections.
  auto sql = SqlClient::admin();
  EXPECT_NE(sql.exec("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                     "WHERE ssl AND application_name = 'dlock-tls-test'"),
            "0");
  // A CA that did not sign the server's certificate is refused: unavailable, in bounded time.
  TempDir other_dir("dlock-postgres-other-ca");
  TestCerts other(other_dir.path(), "other");
  const auto start = clock::now();
  try {
    open(server().url("table=tls_locks&sslmode=verify-full&sslrootcert=" + other.ca.string()));
    FAIL() << "a server certificate from another CA was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("certificate"), std::string::npos) << e.what();
  }
  EXPECT_LT(clock::now() - start, 5s);
  // The name must match too: the certificate is for 127.0.0.1 and localhost only, and the
  // server listens on 127.0.0.2 as well.
  PostgresConfig cfg{.host = "127.0.0.2",
                     .port = server().port(),
                     .user = PostgresServer::kAdmin,
                     .password = PostgresServer::kAdminPassword,
                     .table = "tls_locks",
                     .sslmode = "verify-full",
                     .ssl_ca_file = certs.ca.string()};
  try {
    open(cfg);
    FAIL() << "a certificate for another name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dlock::test
