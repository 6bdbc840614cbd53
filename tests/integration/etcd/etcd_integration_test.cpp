// etcd stores against a real single etcd member: interop with `etcdctl lock` and `etcdctl
// elect` (both directions), URL handling, auth, TLS, an unreachable cluster, lease loss when etcd
// dies, and waiting across a compaction.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/etcd.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

std::string unique(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

errc code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return static_cast<errc>(e.code().value());
  }
  return static_cast<errc>(0);
}

class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("ETCDCTL_API", "3", 1);
    etcd_ = new EtcdCluster();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  static EtcdCluster* etcd_;
  std::string url(const std::string& scheme = "etcd") {
    return scheme + "://" + etcd_->endpoints() + "/?prefix=lock/";
  }
};
EtcdCluster* EtcdTest::etcd_ = nullptr;

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto until = clock::now() + timeout;
  while (clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

TEST_F(EtcdTest, EtcdctlLockExcludesDlock) {
  auto name = unique("ctl-holds");
  Store s = open(url());
  Child ctl({"etcdctl", "--endpoints=" + etcd_->endpoints(), "lock", "lock/" + name, "sleep", "3"});
  ASSERT_TRUE(wait_until([&] { return s.is_locked({}, name); }, 10s)) << "etcdctl never locked";
  EXPECT_FALSE(s.try_acquire({}, name).has_value());
  auto start = clock::now();
  Lease l = s.acquire(Context::with_timeout(20s), name);
  EXPECT_TRUE(l.held());
  EXPECT_GT(clock::now() - start, 500ms);  // It waited for etcdctl's command to end.
  EXPECT_EQ(ctl.wait(5s) == -1, false) << "etcdctl still running while dlock holds the lock";
}

TEST_F(EtcdTest, DlockExcludesEtcdctlLock) {
  auto name = unique("dlock-holds");
  TempDir dir;
  auto marker = (dir.path() / "ran").string();
  Store s = open(url());
  Lease l = s.acquire({}, name, {.ttl = 30s});
  Child ctl(
      {"etcdctl", "--endpoints=" + etcd_->endpoints(), "lock", "lock/" + name, "touch", marker});
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "etcdctl ran while dlock held the lock";
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  EXPECT_TRUE(wait_until([&] { return std::filesystem::exists(marker); }, 10s))
      << "etcdctl never got the lock after dlock released it";
  ctl.wait(5s);
}

// `etcdctl elect` (Go's concurrency.Election) and dlock::Election on etcd:// share the key
// layout `<name>/<lease hex>` and "lowest create revision leads": they take part in one
// election, and dlock reads an etcdctl leader's proposal as the leader's value.
TEST_F(EtcdTest, EtcdctlElectLeadsAndDlockCampaignsBehindIt) {
  auto name = unique("ctl-leads");
  Store s = open(url());
  Election election(s, name, {.ttl = 10s});
  Child ctl({"etcdctl", "--endpoints=" + etcd_->endpoints(), "elect", "lock/" + name, "ctl-v1"});
  ASSERT_TRUE(wait_until(
      [&] {
        auto l = election.leader({});
        return l && l->value == "ctl-v1";
      },
      10s))
      << "dlock never saw etcdctl lead";
  EXPECT_TRUE(election.leader({})->owner.foreign());
  std::atomic<bool> leads{false};
  Leadership mine;
  std::thread candidate([&] {
    mine = election.campaign(Context::with_timeout(30s), "dlock-v1");
    leads = true;
  });
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(leads.load()) << "dlock led while etcdctl led";
  ctl.signal(SIGINT);  // etcdctl resigns (closes its session, revoking the lease) on SIGINT.
  candidate.join();
  ASSERT_TRUE(leads.load());
  EXPECT_TRUE(mine.leading());
  EXPECT_EQ(election.leader({})->value, "dlock-v1");
  EXPECT_EQ(mine.resign().status, ReleaseStatus::released);
}

TEST_F(EtcdTest, DlockLeadsAndEtcdctlElectWaitsForItsResignation) {
  auto name = unique("dlock-leads");
  TempDir dir;
  const auto out = dir.path() / "elect.out";
  Store s = open(url());
  Election election(s, name, {.ttl = 30s});
  Leadership mine = election.campaign({}, "dlock-v1");
  mine.proclaim({}, "dlock-v2");  // A proclaim keeps the lead (and the key).
  EXPECT_EQ(election.leader({})->value, "dlock-v2");
  // etcdctl prints the leader key and its proposal once it leads.
  Child ctl({"etcdctl", "--endpoints=" + etcd_->endpoints(), "elect", "lock/" + name, "ctl-v1"},
            out.string());
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(read_file(out).find("ctl-v1"), std::string::npos) << "etcdctl led while dlock led";
  EXPECT_TRUE(mine.leading());
  const auto term = mine.term();
  EXPECT_EQ(mine.resign().status, ReleaseStatus::released);
  EXPECT_TRUE(wait_until([&] { return read_file(out).find("ctl-v1") != std::string::npos; }, 10s))
      << "etcdctl never led after dlock resigned: " << read_file(out);
  auto now = election.leader({});
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->value, "ctl-v1");
  EXPECT_GT(now->term, term);  // The create revision: terms increase across both clients.
  ctl.signal(SIGINT);
  ctl.wait(5s);
}

TEST_F(EtcdTest, WaitersAreServedInArrivalOrder) {
  auto name = unique("fifo");
  Store s = open(url());
  Lease first = s.acquire({}, name);
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> ts;
  std::vector<Store> stores;  // One object each: core queues same-key calls of one object.
  for (int i = 0; i < 4; ++i) stores.push_back(open(url()));
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      Lease l = stores[i].acquire(Context::with_timeout(30s), name);
      std::lock_guard lk(mu);
      order.push_back(i);
    });
    // Each waiter is queued before the next one starts.
    ASSERT_TRUE(wait_until(
        [&] {
          auto keys = etcd_->etcdctl_output("get --prefix lock/" + name + "/ --keys-only");
          return std::count(keys.begin(), keys.end(), '/') >= 2 * (i + 2);
        },
        5s));
  }
  first.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(EtcdTest, GivingUpRemovesTheWaiterKey) {
  auto name = unique("give-up");
  Store a = open(url()), b = open(url());
  Lease held = a.acquire({}, name);
  auto waiter_keys = [&] {
    auto keys = etcd_->etcdctl_output("get --prefix lock/" + name + "/ --keys-only");
    return std::count(keys.begin(), keys.end(), '/') / 2;
  };
  EXPECT_EQ(code_of([&] { b.acquire(Context::with_timeout(300ms), name); }), errc::timeout);
  EXPECT_EQ(waiter_keys(), 1);  // Only the holder's key: the timed-out waiter left the queue.
  EXPECT_FALSE(b.try_acquire({}, name).has_value());
  EXPECT_EQ(waiter_keys(), 1);
  std::stop_source stop;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  EXPECT_EQ(code_of([&] { b.acquire(Context::with_stop(stop.get_token()), name); }),
            errc::cancelled);
  canceller.join();
  EXPECT_EQ(waiter_keys(), 1);
  held.release();
  EXPECT_EQ(waiter_keys(), 0);
  EXPECT_TRUE(b.try_acquire({}, name).has_value());
}

TEST_F(EtcdTest, SequentialLocksReuseOneLease) {
  auto lease_count = [&] {
    auto out = etcd_->etcdctl_output("lease list");  // "found N leases\n..."
    return std::atol(out.c_str() + std::string("found ").size());
  };
  for (std::string scheme : {"etcd", "etcd+txn"}) {
    Store s = open(url(scheme));
    auto name = unique("reuse");
    s.acquire({}, name, {.ttl = 7s}).release();
    const long before = lease_count();
    EXPECT_GE(before, 1) << "the released lease should be pooled, not revoked";
    for (int i = 0; i < 30; ++i) {
      Lease l = s.acquire({}, name, {.ttl = 7s});
      EXPECT_EQ(l.release().status, ReleaseStatus::released);
    }
    // No LeaseGrant per acquisition: the released lease is reused (another test's leases may
    // come and go meanwhile, hence the slack).
    EXPECT_LE(lease_count(), before + 2) << scheme;
    // Closing the store revokes its pooled (idle) leases instead of leaving them to expire.
    const long pooled = lease_count();
    s.close();
    EXPECT_LT(lease_count(), pooled) << scheme;
  }
}

TEST_F(EtcdTest, UrlsAndConfig) {
  EXPECT_EQ(code_of([&] { open(url() + "&bogus=1"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open("etcd://127.0.0.1:1/some/path"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(url() + "&connect_timeout=-1s"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(url() + "&dial_timeout=-1s"); }), errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(url() + "&connect_timeout=1s&dial_timeout=1s"); }),
            errc::invalid_argument);
  EXPECT_EQ(code_of([&] { open(url() + "&dial_timeout=2s"); }), static_cast<errc>(0));  // Alias.
  Store txn = open(url("etcd+txn"));
  EXPECT_EQ(txn.scheme(), "etcd+txn");
  EXPECT_FALSE(txn.capabilities().fifo);
  Store fifo = open(url());
  EXPECT_TRUE(fifo.capabilities().fifo);
  EXPECT_TRUE(fifo.capabilities().notifies);
  EtcdConfig c;
  c.endpoints = {"127.0.0.1:" + std::to_string(etcd_->client_port(0))};
  c.prefix = "cfg/";
  c.mode = EtcdConfig::Mode::txn;
  Store s = open(c);
  auto name = unique("cfg");
  Lease l = s.acquire({}, name);
  EXPECT_EQ(etcd_->etcdctl("get cfg/" + name + " --print-value-only"), 0);
  // The txn store's key is exactly <prefix><name>; its create revision is the fencing token.
  auto info = s.inspect({}, name);
  EXPECT_TRUE(info.held);
  EXPECT_EQ(info.fencing_token, l.fencing_token());
}

TEST_F(EtcdTest, NothingListeningIsUnavailableWithinTheConnectTimeout) {
  const auto base = "etcd://127.0.0.1:" + std::to_string(free_port()) + "/?";
  // The default bound is 5 s: a shorter one, by either name, is what ends the wait.
  for (std::string key : {"connect_timeout", "dial_timeout"}) {
    auto start = clock::now();
    EXPECT_EQ(code_of([&] { open(base + key + "=500ms"); }), errc::unavailable) << key;
    EXPECT_LT(clock::now() - start, 3s) << key;
  }
}

TEST_F(EtcdTest, WaiterSurvivesCompaction) {
  auto name = unique("compact");
  Store a = open(url()), b = open(url());
  Lease held = a.acquire({}, name);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    Lease l = b.acquire(Context::with_timeout(30s), name);
    got = true;
  });
  std::this_thread::sleep_for(300ms);
  // Write some revisions, then compact everything up to now.
  for (int i = 0; i < 5; ++i) etcd_->etcdctl("put compact-filler " + std::to_string(i));
  ASSERT_EQ(std::system(("ETCDCTL_API=3 etcdctl --endpoints=" + etcd_->endpoints() +
                         " compact $(ETCDCTL_API=3 etcdctl --endpoints=" + etcd_->endpoints() +
                         " endpoint status -w fields | awk '/\"Revision\"/ {print $3}')"
                         " >/dev/null 2>&1")
                            .c_str()),
            0);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(got.load());
  held.release();
  waiter.join();
  EXPECT_TRUE(got.load());
}

// ---- Auth ----

TEST(EtcdAuth, WrongPasswordIsAuthFailedAndTheRightOneWorks) {
  ::setenv("ETCDCTL_API", "3", 1);
  EtcdCluster etcd(1, {"--auth-token-ttl=2"});
  ASSERT_EQ(etcd.etcdctl("user add root:s3cret"), 0);
  ASSERT_EQ(etcd.etcdctl("auth enable"), 0);
  auto base = etcd.endpoints() + "/?prefix=lock/";
  try {
    open("etcd://root:wrong@" + base);
    FAIL() << "opened with a wrong password";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::auth_failed) << e.what();
    EXPECT_EQ(std::string(e.what()).find("wrong"), std::string::npos) << "password in error";
  }
  EXPECT_EQ(code_of([&] { open("etcd://" + base); }), static_cast<errc>(0));  // Opens...
  Store anon = open("etcd://" + base);
  try {
    anon.acquire({}, "x");  // ...but may not lock; the error names the store, key and step.
    ADD_FAILURE() << "locked without credentials";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::auth_failed) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("dlock: etcd: key 'x': acquire: ", 0), 0u) << e.what();
  }
  Store s = open("etcd://root:s3cret@" + base);
  EXPECT_EQ(s.url().find("s3cret"), std::string::npos);
  Lease l = s.acquire({}, "auth-lock", {.ttl = 5s});
  Store other = open("etcd+txn://root:s3cret@" + base);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    Store w = open("etcd://root:s3cret@" + base);
    Lease l2 = w.acquire(Context::with_timeout(20s), "auth-lock");
    got = true;
  });
  // Outlive the token TTL: calls and new streams re-authenticate.
  std::this_thread::sleep_for(3s);
  l.renew({}, 5s);
  EXPECT_TRUE(s.is_locked({}, "auth-lock"));
  EXPECT_FALSE(got.load());
  // A held key watched on a stream whose token expired meanwhile: etcd refuses that watch;
  // a new stream (fresh token) takes over, and a force release is still reported at once.
  std::atomic<bool> lost{false};
  Lease watched =
      s.acquire({}, "auth-watched", {.ttl = 30s, .on_lost = [&](const LossInfo&) { lost = true; }});
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(open("etcd://root:s3cret@" + base).force_release({}, "auth-watched"));
  for (auto until = clock::now() + 3s; !lost && clock::now() < until;) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(lost.load()) << "no loss signal for a key watched after the token expired";
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  waiter.join();
  EXPECT_TRUE(got.load());
}

// ---- TLS ----

bool another_is_locked(const std::string& url, const std::string& key) {
  return open(url).is_locked({}, key);
}

TEST(EtcdTls, CertificatesMadeWithOpenssl) {
  ::setenv("ETCDCTL_API", "3", 1);
  TempDir dir("dlock-pki");
  TestPki pki(dir.path());
  auto p = [&](const std::string& f) { return (dir.path() / f).string(); };
  EtcdCluster etcd(1, pki.etcd_flags(), pki.etcdctl_flags());
  const std::string hostport = "127.0.0.1:" + std::to_string(etcd.client_port(0));
  const std::string files =
      "ca=" + p("ca.pem") + "&cert=" + p("client.pem") + "&key=" + p("client.key");
  for (std::string scheme : {"etcds", "etcd+txn+tls"}) {
    Store s = open(scheme + "://" + hostport + "/?" + files);
    Lease l = s.acquire({}, "tls-" + scheme, {.ttl = 5s});
    EXPECT_TRUE(another_is_locked(scheme + "://" + hostport + "/?" + files, "tls-" + scheme));
    EXPECT_EQ(l.release().status, ReleaseStatus::released);
  }
  // The tls= parameter, and the config struct.
  Store q = open("etcd://" + hostport + "/?tls=true&" + files);
  EXPECT_TRUE(q.try_acquire({}, "tls-param").has_value());
  EtcdConfig c;
  c.endpoints = {hostport};
  c.ca_file = p("ca.pem");
  c.cert_file = p("client.pem");
  c.key_file = p("client.key");
  Store viaConfig = open(c);
  EXPECT_FALSE(viaConfig.is_locked({}, "free"));
  // Without a client certificate, or trusting another CA, or in plain text: refused.
  EXPECT_EQ(
      code_of([&] { open("etcds://" + hostport + "/?connect_timeout=1s&ca=" + p("ca.pem")); }),
      errc::unavailable);
  EXPECT_EQ(code_of([&] {
              open("etcds://" + hostport + "/?connect_timeout=1s&ca=" + p("client.pem") +
                   "&cert=" + p("client.pem") + "&key=" + p("client.key"));
            }),
            errc::unavailable);
  EXPECT_EQ(code_of([&] { open("etcd://" + hostport + "/?connect_timeout=1s"); }),
            errc::unavailable);
  EXPECT_EQ(code_of([&] { open("etcds://" + hostport + "/?ca=/nonexistent.pem"); }),
            errc::invalid_argument);
}

}  // namespace
}  // namespace dlock::test
