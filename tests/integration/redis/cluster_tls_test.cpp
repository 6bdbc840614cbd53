// rediss+cluster:// against a real TLS-only three-master Redis Cluster on loopback: locks
// spread over the nodes, waiters woken over TLS shard subscriptions, MOVED redirects that
// stay on TLS, certificate and name checks per node, and URL/config validation.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/redis.hpp"
#include "integration/redis/cluster_group.hpp"
#include "integration/redis/cluster_slots.hpp"
#include "integration/redis/raw_client.hpp"
#include "integration/redis/test_certs.hpp"
#include "redis/cluster.hpp"
#include "redis/config.hpp"
#include "redis/connection.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
namespace rd = dlock::detail::redis;

class ClusterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_program("redis-server")) GTEST_SKIP() << "redis-server not installed";
    if (!have_program("openssl")) GTEST_SKIP() << "openssl not installed";
  }
};

TEST_F(ClusterTlsTest, LocksSpreadOverNodesWaitersAreWokenAndMovedStaysOnTls) {
  TempDir dir("dlock-cluster-tls");
  TestCerts certs(dir.path());
  ClusterGroup cluster(certs);
  const std::string ca = "ca=" + certs.ca.string();
  auto store = open(cluster.url(ca));
  EXPECT_EQ(store.scheme(), "rediss+cluster");
  EXPECT_EQ(store.url().rfind("rediss+cluster://127.0.0.1:", 0), 0u) << store.url();

  // Locks land on the node owning their slot (reached over TLS at the address the slot map
  // announces); every node gets some.
  std::vector<Lease> leases;
  for (int i = 0; i < 30; ++i) leases.push_back(store.acquire({}, "n" + std::to_string(i)));
  std::vector<std::unique_ptr<RawClient>> raw;
  for (int i = 0; i < 3; ++i) {
    raw.push_back(std::make_unique<RawClient>(cluster.node(i).port(), certs));
  }
  for (int i = 0; i < 3; ++i) EXPECT_GT(raw[i]->cmd({"DBSIZE"}).integer, 0) << "node " << i;
  EXPECT_EQ(store.list({}, "n").size(), 30u);
  leases.clear();
  EXPECT_TRUE(store.list({}, "n").empty());

  // Contention: the waiter's backoff is far longer than the test, so only the release's
  // wake-up (a shard channel on the lock's node, subscribed over TLS) gets it the lock.
  auto other = open(cluster.url(ca));
  const std::string name = "contended";
  Lease held = store.acquire({}, name, {.ttl = 30s});
  EXPECT_FALSE(other.try_acquire({}, name).has_value());
  std::atomic<bool> got{false};
  std::uint64_t waiter_token = 0;
  clock::time_point acquired_at;
  std::thread waiter([&] {
    Lease l = other.acquire(Context::with_timeout(20s), name,
                            {.ttl = 10s, .retry = {.delay = 30s, .max_delay = 30s}});
    acquired_at = clock::now();
    waiter_token = l.fencing_token();
    got = true;
    EXPECT_TRUE(l.release());
  });
  // Wait until the waiter is subscribed on the lock's node, then release.
  const std::string pattern = "{lock:" + name + "}:wake:*";
  bool subscribed = false;
  for (auto t0 = clock::now(); !subscribed && clock::now() - t0 < 10s;) {
    for (auto& r : raw) {
      if (!r->cmd({"PUBSUB", "SHARDCHANNELS", pattern}).elements.empty()) subscribed = true;
    }
    if (!subscribed) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(subscribed) << "no shard channel subscribed";
  EXPECT_EQ(store.list({}, name).size(), 1u);
  const auto released_at = clock::now();
  EXPECT_TRUE(held.release());
  waiter.join();
  ASSERT_TRUE(got.load());
  EXPECT_LT(acquired_at - released_at, 10s);
  EXPECT_GT(waiter_token, held.fencing_token());
  EXPECT_GE(other.metrics().notifications, 1u);
  EXPECT_TRUE(store.list({}, name).empty());

  // Move an empty slot to another node behind the store's back: the MOVED reply names the
  // new owner's address, which the store must reach over TLS too.
  const std::string moved = "moved";
  const int slot = rd::key_slot("lock:" + moved);
  const int from = slot_owner(raw, cluster, slot);
  ASSERT_GE(from, 0) << "CLUSTER SLOTS over TLS does not announce the TLS ports";
  const int to = (from + 1) % 3;
  ASSERT_EQ(give_slot(raw, slot, from, to), "");
  Lease l = store.acquire(Context::with_timeout(10s), moved, {.ttl = 10s});
  EXPECT_EQ(raw[to]->cmd({"GET", "lock:" + moved}).str, l.token());
  EXPECT_TRUE(l.release());
}

TEST_F(ClusterTlsTest, EveryNodeIsVerifiedUnderItsOwnAddress) {
  TempDir dir("dlock-cluster-tls");
  TestCerts certs(dir.path());
  TestCerts stranger(dir.path(), "other");
  ClusterGroup cluster(certs);
  const std::string ca = "ca=" + certs.ca.string();
  const std::string fast = "connect_timeout=1s&request_timeout=1s";

  // From a config struct: `host` is not used in a cluster, so a name the certificates do not
  // carry there must not be what the nodes are checked against.
  RedisConfig cfg;
  cfg.host = "not-a-node.example";
  cfg.tls = true;
  cfg.ca_file = certs.ca.string();
  for (int i = 0; i < 3; ++i) cfg.cluster_nodes.push_back({"127.0.0.1", cluster.node(i).port()});
  auto s = open(cfg);
  EXPECT_EQ(s.scheme(), "rediss+cluster");
  std::vector<Lease> leases;
  for (int i = 0; i < 12; ++i) {
    leases.push_back(s.acquire(Context::with_timeout(10s), "cfg" + std::to_string(i)));
  }
  EXPECT_EQ(s.list({}, "cfg").size(), 12u);
  leases.clear();

  // No CA given (the system's, which never signed the test CA): a typed error, soon.
  auto t0 = clock::now();
  try {
    open(cluster.url(fast), Context::with_timeout(20s));
    ADD_FAILURE() << "a node was trusted without its CA";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
  }
  EXPECT_LT(clock::now() - t0, 5s);
  // Another CA, or a name the certificates do not carry: refused, also typed and bounded.
  t0 = clock::now();
  EXPECT_EQ(code_of([&] { open(cluster.url("ca=" + stranger.ca.string() + "&" + fast)); }),
            errc::unavailable);
  EXPECT_EQ(code_of([&] { open(cluster.url(ca + "&sni=wrong.example&" + fast)); }),
            errc::unavailable);
  EXPECT_LT(clock::now() - t0, 10s);
  // `sni` names every node: the certificates carry "localhost" too.
  auto named = open(cluster.url(ca + "&sni=localhost"));
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(named.try_acquire({}, "sni" + std::to_string(i)));
  // verify=false skips the checks (testing only).
  auto unverified = open(cluster.url("verify=false"));
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(unverified.try_acquire({}, "nv" + std::to_string(i)));
  // A client certificate is sent to every node (the nodes accept, not require, one).
  auto mtls = open(cluster.url(ca + "&cert=" + certs.client_cert.string() +
                               "&key=" + certs.client_key.string()));
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(mtls.try_acquire({}, "mtls" + std::to_string(i)));
  // Plain TCP to the TLS ports does not pass for a cluster.
  t0 = clock::now();
  EXPECT_NE(code_of([&] {
              open("redis+cluster://127.0.0.1:" + std::to_string(cluster.node(0).port()) +
                   "?connect_timeout=500ms&request_timeout=500ms");
            }),
            errc{});
  EXPECT_LT(clock::now() - t0, 10s);
}

TEST_F(ClusterTlsTest, UrlAndConfigValidation) {
  auto bad = [](const std::string& url) { return code_of([&] { open(url); }); };
  // Unknown key; a client certificate without its key (and the reverse).
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1,127.0.0.1:2?bogus=1"), errc::invalid_argument);
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1?cert=/tmp/c.pem"), errc::invalid_argument);
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1?key=/tmp/k.pem"), errc::invalid_argument);
  // TLS keys belong to rediss+cluster://, not redis+cluster://.
  EXPECT_EQ(bad("redis+cluster://127.0.0.1:1?ca=/x"), errc::invalid_argument);
  // A cluster has no databases; an unreadable CA file is found before connecting.
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1/2"), errc::invalid_argument);
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1?ca=/nonexistent/ca.pem"), errc::invalid_argument);
  EXPECT_EQ(bad("rediss+cluster://127.0.0.1:1?verify=maybe"), errc::invalid_argument);

  // Every TLS key of rediss:// is read, and the URL shows no password.
  auto c = rd::parse_redis_url(
      "rediss+cluster://u:secret@10.0.0.1:7000,[::1]:7001?prefix=p:&ca=/ca.pem&cert=/c.pem"
      "&key=/k.pem&sni=redis.example&verify=false&connect_timeout=3s&command_timeout=4s"
      "&min_replicas=1&replica_timeout=500ms");
  ASSERT_EQ(c.cluster_nodes.size(), 2u);
  EXPECT_EQ(c.cluster_nodes[1].host, "::1");
  EXPECT_EQ(c.cluster_nodes[1].port, 7001);
  EXPECT_TRUE(c.tls);
  EXPECT_EQ(c.ca_file, "/ca.pem");
  EXPECT_EQ(c.cert_file, "/c.pem");
  EXPECT_EQ(c.key_file, "/k.pem");
  EXPECT_EQ(c.tls_sni, "redis.example");
  EXPECT_FALSE(c.tls_verify);
  EXPECT_EQ(c.prefix, "p:");
  EXPECT_EQ(c.user, "u");
  EXPECT_EQ(c.connect_timeout, 3s);
  EXPECT_EQ(c.request_timeout, 4s);
  EXPECT_EQ(c.min_replicas, 1);
  EXPECT_EQ(c.replica_timeout, 500ms);
  EXPECT_EQ(rd::redacted_url(c), "rediss+cluster://u:***@10.0.0.1:7000,[::1]:7001");
  EXPECT_FALSE(rd::parse_redis_url("redis+cluster://127.0.0.1:1").tls);

  // The config struct: cluster with TLS is accepted.
  RedisConfig cfg;
  cfg.tls = true;
  cfg.cluster_nodes = {{"127.0.0.1", 1}};
  cfg.cert_file = "/c.pem";
  EXPECT_EQ(code_of([&] { rd::connection_options(cfg); }), errc::invalid_argument);
  cfg.cert_file.clear();
  auto o = rd::connection_options(cfg);
  EXPECT_TRUE(o.tls);
  EXPECT_TRUE(o.tls_name.empty());  // Each node is checked under its own address.
  cfg.tls_sni = "redis.example";
  EXPECT_EQ(rd::connection_options(cfg).tls_name, "redis.example");
}

}  // namespace
}  // namespace dlock::test
