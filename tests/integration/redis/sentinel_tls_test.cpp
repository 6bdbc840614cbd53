// rediss+sentinel:// against a real TLS-only Sentinel group on loopback (master, replica and
// three sentinels, replication and the sentinels' links over TLS): the master lookup, locks,
// waiters woken over TLS subscriptions, certificate checks at the sentinels, and a failover
// that the store follows over TLS.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/redis.hpp"
#include "integration/redis/raw_client.hpp"
#include "integration/redis/sentinel_group.hpp"
#include "integration/redis/test_certs.hpp"
#include "redis/config.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
namespace rd = dlock::detail::redis;

class SentinelTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_program("redis-server")) GTEST_SKIP() << "redis-server not installed";
    if (!have_program("openssl")) GTEST_SKIP() << "openssl not installed";
  }
};

TEST_F(SentinelTlsTest, LocksWaitsAndFailsOverThroughTlsSentinels) {
  TempDir dir("dlock-sentinel-tls");
  TestCerts certs(dir.path());
  TestCerts stranger(dir.path(), "other");
  SentinelGroup group(certs);
  const std::string ca = "ca=" + certs.ca.string();

  auto a = open(group.url(ca + "&connect_timeout=1s"));
  auto b = open(group.url(ca + "&connect_timeout=1s"));
  EXPECT_EQ(a.scheme(), "rediss+sentinel");
  EXPECT_EQ(a.url().rfind("rediss+sentinel://127.0.0.1:", 0), 0u) << a.url();

  // A lock, and a waiter whose backoff is far longer than the test: only the release's
  // message (on a subscription to the TLS master) can get it the lock in time.
  Lease held = a.acquire({}, "tls", {.ttl = 30s});
  std::thread releaser([&] {
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(held.release());
  });
  Lease got = b.acquire(Context::with_timeout(10s), "tls",
                        {.ttl = 10s, .retry = {.delay = 30s, .max_delay = 30s}});
  releaser.join();
  EXPECT_GE(b.metrics().notifications, 1u);
  EXPECT_GT(got.fencing_token(), held.fencing_token());
  RawClient master(group.master().port(), certs);
  EXPECT_EQ(master.cmd({"GET", "lock:tls"}).str, got.token());

  // Sentinels whose certificates the CA does not vouch for: a typed error naming the
  // sentinels and TLS, in bounded time.
  auto t0 = clock::now();
  try {
    open(group.url("ca=" + stranger.ca.string() + "&connect_timeout=1s"),
         Context::with_timeout(10s));
    ADD_FAILURE() << "the sentinels were trusted without their CA";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("sentinel"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
  }
  EXPECT_LT(clock::now() - t0, 5s);

  // A failover: the sentinels promote the replica, and the same store object follows them to
  // the new master (over TLS, as it asked them over TLS).
  RawClient sentinel(group.sentinel_ports()[0], certs);
  t0 = clock::now();
  while (master.cmd({"INFO", "replication"}).str.find("state=online") == std::string::npos &&
         clock::now() - t0 < 20s) {
    std::this_thread::sleep_for(50ms);
  }
  t0 = clock::now();
  while (sentinel.cmd({"SENTINEL", "replicas", SentinelGroup::kMaster}).elements.size() != 1 &&
         clock::now() - t0 < 30s) {
    std::this_thread::sleep_for(100ms);
  }
  auto master_port = [&] {
    auto r = sentinel.cmd({"SENTINEL", "get-master-addr-by-name", SentinelGroup::kMaster});
    return r.elements.size() == 2 ? std::stoi(r.elements[1].str) : 0;
  };
  auto r = sentinel.cmd({"SENTINEL", "FAILOVER", SentinelGroup::kMaster});
  ASSERT_FALSE(r.is_error()) << r.str;
  t0 = clock::now();
  // Up to 90 s: a sentinel starved of CPU (a loaded CI machine) enters TILT mode.
  while (master_port() != group.replica().port() && clock::now() - t0 < 90s) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(master_port(), group.replica().port()) << group.sentinel_log(0);
  // Until the sentinels demote the old master it still takes writes (a store that has not
  // heard the announcement yet may write there): wait for that, so that where the lock
  // lands says where the store went.
  t0 = clock::now();
  while (master.cmd({"ROLE"}).elements.at(0).str != "slave" && clock::now() - t0 < 30s) {
    std::this_thread::sleep_for(100ms);
  }
  std::optional<Lease> after;
  t0 = clock::now();
  while (!after && clock::now() - t0 < 30s) {
    try {
      after = a.try_acquire(Context::with_timeout(5s), "after", {.ttl = 10s});
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == errc::unavailable || e.code() == errc::timeout) << e.what();
      std::this_thread::sleep_for(100ms);
    }
  }
  ASSERT_TRUE(after.has_value());
  RawClient promoted(group.replica().port(), certs);
  EXPECT_EQ(promoted.cmd({"GET", "lock:after"}).str, after->token());
}

TEST_F(SentinelTlsTest, UrlAndConfig) {
  auto c = rd::parse_redis_url(
      "rediss+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2?ca=/ca.pem&cert=/c.pem"
      "&key=/k.pem&sni=redis.example&verify=false&sentinel_password=spw");
  EXPECT_TRUE(c.tls);
  ASSERT_EQ(c.sentinels.size(), 2u);
  EXPECT_EQ(c.sentinel_master, "mymaster");
  EXPECT_EQ(c.db, 2);
  EXPECT_EQ(c.tls_sni, "redis.example");
  EXPECT_FALSE(c.tls_verify);
  EXPECT_EQ(c.sentinel_password, "spw");
  EXPECT_EQ(rd::redacted_url(c),
            "rediss+sentinel://:***@127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
  // TLS keys belong to rediss+sentinel://, not redis+sentinel://.
  EXPECT_EQ(code_of([&] { open("redis+sentinel://127.0.0.1:1/m?ca=/x"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open("rediss+sentinel://127.0.0.1:1/m?cert=/c.pem"); }),
            errc::invalid_argument);
  // The master and the sentinels are each checked under their own address unless `sni` names
  // them all.
  RedisConfig cfg;
  cfg.tls = true;
  cfg.sentinels = {{"127.0.0.1", 1}};
  cfg.sentinel_master = "m";
  EXPECT_TRUE(rd::connection_options(cfg).tls_name.empty());
  cfg.tls_sni = "redis.example";
  EXPECT_EQ(rd::connection_options(cfg).tls_name, "redis.example");
}

}  // namespace
}  // namespace dlock::test
