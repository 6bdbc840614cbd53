// ZooKeeper store tests against one real server per binary (Debian's zookeeper jar): URLs and
// config, typed errors for unreachable servers and bad credentials, interop with kazoo's Lock,
// ReadLock and WriteLock both ways, loss reports for a deleted node and for an ended session.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/store_core.hpp"
#include "dlock/dlock.hpp"
#include "dlock/zookeeper.hpp"
#include "integration/zookeeper/zk_server.hpp"
#include "zookeeper/config.hpp"
#include "zookeeper/zookeeper_backend.hpp"

namespace dlock {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using test::shared_zookeeper;

const std::string kPeer = std::string(DLOCK_ZK_TEST_DIR) + "/kazoo_peer.py";

errc code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return static_cast<errc>(e.code().value());
  }
  return errc{};
}

// Runs the kazoo peer to its end; returns its output (`check`: it must exit with 0).
std::string run_peer(const std::vector<std::string>& args, bool check = true) {
  test::TempDir dir("dlock-kazoo");
  const auto out = (dir.path() / "out").string();
  std::vector<std::string> argv = {"/usr/bin/python3", kPeer};
  argv.insert(argv.end(), args.begin(), args.end());
  test::Child c(argv, out);
  const int status = c.wait(60s);
  if (check) {
    EXPECT_EQ(status, 0) << test::read_file(out);
  }
  return test::read_file(out);
}

// Waits until `pred` holds or `limit` passes.
template <class P>
bool eventually(P pred, clock::duration limit = 20s) {
  for (auto until = clock::now() + limit; clock::now() < until;) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string unique_key(const std::string& name) {
  static std::atomic<int> n{0};
  return "it-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" + name;
}

TEST(ZooKeeperConfig, UrlsParseAndBadOnesAreRefused) {
  auto c = detail::zookeeper::parse_zookeeper_url(
      "zk://app:s3cret@h1:2181,h2/locks/a?session_timeout=6s&connect_timeout=1500ms");
  EXPECT_EQ(c.hosts, "h1:2181,h2:2181");
  EXPECT_EQ(c.root, "/locks/a");
  EXPECT_EQ(c.user, "app");
  EXPECT_EQ(c.password, "s3cret");
  EXPECT_EQ(c.session_timeout, 6s);
  EXPECT_EQ(c.connect_timeout, 1500ms);
  EXPECT_EQ(detail::zookeeper::redacted_url(c),
            "zk://app:***@h1:2181,h2:2181/locks/a?session_timeout=6s&connect_timeout=1500ms");
  EXPECT_EQ(detail::zookeeper::parse_zookeeper_url("zk://h").root, "/dlock");
  for (const char* bad : {"zk://", "zk://h:2181/a/", "zk://h:2181/a//b", "zk://h:99999",
                          "zk://h?bogus=1", "zk://h?session_timeout=5", "zk://h?session_timeout=0s",
                          "zk://h/zookeeper/x", "zk://h/a/../b", "zk://:pw@h"}) {
    EXPECT_EQ(code_of([&] { detail::zookeeper::parse_zookeeper_url(bad); }), errc::invalid_argument)
        << bad;
  }
  EXPECT_EQ(code_of([] { open("zks://127.0.0.1:2281"); }), errc::unsupported);
  EXPECT_EQ(code_of([] { open(ZooKeeperConfig{.hosts = ""}); }), errc::invalid_argument);
}

TEST(ZooKeeperConfig, KeysBecomeOneNodeNameAndBack) {
  for (std::string k : {"a", "jobs.daily", "a/b/c", ".", "..", "100%", "caf\xc3\xa9", "x y"}) {
    const auto name = detail::zookeeper::encode_key(k);
    EXPECT_EQ(name.find('/'), std::string::npos) << k;
    EXPECT_NE(name, ".");
    EXPECT_NE(name, "..");
    EXPECT_EQ(detail::zookeeper::decode_key(name), k);
  }
  EXPECT_FALSE(detail::zookeeper::decode_key("%zz").has_value());
}

TEST(ZooKeeperErrors, UnreachableServerIsUnavailableInBoundedTime) {
  const auto port = test::free_port();  // Nothing listens there.
  const auto started = clock::now();
  EXPECT_EQ(
      code_of([&] { open("zk://127.0.0.1:" + std::to_string(port) + "/x?connect_timeout=1s"); }),
      errc::unavailable);
  EXPECT_LT(clock::now() - started, 30s);  // Bounded (a hang would stop here), not a speed check.
  // A context deadline shorter than the connect timeout ends it as a timeout.
  EXPECT_EQ(code_of([&] {
              open("zk://127.0.0.1:" + std::to_string(port) + "/x?connect_timeout=20s",
                   Context::with_timeout(500ms));
            }),
            errc::timeout);
}

TEST(ZooKeeperErrors, AStoppedContextIsCancelled) {
  auto& zk = shared_zookeeper();
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(code_of([&] { open(zk.url("/cancel"), Context::with_stop(stop.get_token())); }),
            errc::cancelled);
  Store store = open(zk.url("/cancel"));
  const auto key = unique_key("cancel");
  Lease held = store.acquire({}, key);
  // A waiter cancelled before it starts, and one cancelled while it waits.
  EXPECT_EQ(
      code_of([&] { open(zk.url("/cancel")).acquire(Context::with_stop(stop.get_token()), key); }),
      errc::cancelled);
  std::stop_source later;
  Store other = open(zk.url("/cancel"));
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    later.request_stop();
  });
  EXPECT_EQ(code_of([&] { other.acquire(Context::with_stop(later.get_token()), key); }),
            errc::cancelled);
  canceller.join();
  EXPECT_EQ(held.release().status, ReleaseStatus::released);
  // The cancelled waiter left no node behind: the lock is free.
  EXPECT_TRUE(other.try_acquire({}, key).has_value());
}

TEST(ZooKeeperErrors, AnotherDigestUserIsRefused) {
  auto& zk = shared_zookeeper();
  const std::string root = "/auth-" + std::to_string(::getpid());
  ZooKeeperConfig owner{.hosts = zk.hosts(), .root = root, .user = "alice", .password = "pw1"};
  Store a = open(owner);
  const auto key = unique_key("auth");
  auto lease = a.try_acquire({}, key);
  ASSERT_TRUE(lease.has_value());
  // The root (and every node) is alice's alone: a wrong password is refused by its ACL.
  ZooKeeperConfig wrong = owner;
  wrong.password = "wrong";
  EXPECT_EQ(code_of([&] { open(wrong); }), errc::auth_failed);
  ZooKeeperConfig nobody = owner;
  nobody.user.clear();
  nobody.password.clear();
  EXPECT_EQ(code_of([&] { open(nobody); }), errc::auth_failed);
  // The same credentials share the locks.
  Store again = open(owner);
  EXPECT_FALSE(again.try_acquire({}, key).has_value());
  lease->release();
  EXPECT_TRUE(again.try_acquire({}, key).has_value());
}

TEST(ZooKeeperInterop, AKazooHolderBlocksDlockAndShowsAsAForeignHolder) {
  auto& zk = shared_zookeeper();
  Store store = open(zk.url("/interop"));
  const auto key = unique_key("kazoo-holds");
  test::TempDir dir("dlock-kazoo-hold");
  const auto out = (dir.path() / "out").string();
  const auto done = dir.path() / "done";
  test::Child peer({"/usr/bin/python3", kPeer, "hold", zk.hosts(), "/interop/" + key,
                    "kazoo-identifier", done.string()},
                   out);
  ASSERT_TRUE(
      eventually([&] { return test::read_file(out).find("held") != std::string::npos; }, 60s))
      << test::read_file(out);
  EXPECT_FALSE(store.try_acquire({}, key).has_value());
  auto info = store.inspect({}, key);
  EXPECT_TRUE(info.held);
  EXPECT_EQ(info.owner.text, "kazoo-identifier");
  EXPECT_GT(info.fencing_token, 0u);
  EXPECT_EQ(info.ttl_remaining, std::chrono::milliseconds(-1));  // kazoo records no TTL.
  // A waiter queues behind kazoo's node and gets the lock when kazoo releases it.
  std::atomic<bool> got{false};
  std::uint64_t token = 0;
  std::thread waiter([&] {
    Lease l = store.acquire(Context::with_timeout(30s), key);
    token = l.fencing_token();
    got = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(got.load());
  std::ofstream(done) << "1";
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_GT(token, info.fencing_token);
  EXPECT_EQ(peer.wait(30s), 0) << test::read_file(out);
}

TEST(ZooKeeperInterop, ADlockHolderBlocksKazoo) {
  auto& zk = shared_zookeeper();
  Store store = open(zk.url("/interop"));
  const auto key = unique_key("dlock-holds");
  {
    auto lease = store.try_acquire({}, key);
    ASSERT_TRUE(lease.has_value());
    EXPECT_NE(run_peer({"try", zk.hosts(), "/interop/" + key}).find("blocked"), std::string::npos);
  }
  EXPECT_NE(run_peer({"try", zk.hosts(), "/interop/" + key}).find("acquired"), std::string::npos);
}

TEST(ZooKeeperInterop, AKazooReadLockLetsDlockReadersInAndBlocksAWriter) {
  auto& zk = shared_zookeeper();
  Store store = open(zk.url("/interop"));
  const auto key = unique_key("kazoo-reads");
  test::TempDir dir("dlock-kazoo-read");
  const auto out = (dir.path() / "out").string();
  const auto done = dir.path() / "done";
  test::Child peer({"/usr/bin/python3", kPeer, "hold_read", zk.hosts(), "/interop/" + key,
                    "kazoo-reader", done.string()},
                   out);
  ASSERT_TRUE(
      eventually([&] { return test::read_file(out).find("held") != std::string::npos; }, 60s))
      << test::read_file(out);
  EXPECT_FALSE(store.try_acquire({}, key).has_value());
  {
    auto reader = store.try_acquire({}, key, {.mode = LockMode::shared()});
    ASSERT_TRUE(reader.has_value());
    EXPECT_EQ(reader->mode(), LockMode::shared());
    auto info = store.inspect({}, key);
    ASSERT_EQ(info.holders.size(), 2u);
    EXPECT_EQ(info.holders[0].owner.text, "kazoo-reader");
    for (auto& h : info.holders) EXPECT_EQ(h.mode, LockMode::shared());
    EXPECT_GT(reader->fencing_token(), info.holders[0].fencing_token);
    EXPECT_FALSE(store.try_acquire({}, key).has_value());
  }
  std::ofstream(done) << "1";
  EXPECT_EQ(peer.wait(30s), 0) << test::read_file(out);
  EXPECT_TRUE(store.try_acquire({}, key).has_value());
}

TEST(ZooKeeperInterop, ADlockReaderLetsKazooReadLockInAndBlocksItsWriteLock) {
  auto& zk = shared_zookeeper();
  Store store = open(zk.url("/interop"));
  const auto key = unique_key("dlock-reads");
  {
    auto reader = store.try_acquire({}, key, {.mode = LockMode::shared()});
    ASSERT_TRUE(reader.has_value());
    EXPECT_NE(run_peer({"try_read", zk.hosts(), "/interop/" + key}).find("acquired"),
              std::string::npos);
    EXPECT_NE(run_peer({"try_write", zk.hosts(), "/interop/" + key}).find("blocked"),
              std::string::npos);
  }
  EXPECT_NE(run_peer({"try_write", zk.hosts(), "/interop/" + key}).find("acquired"),
            std::string::npos);
  {
    // A dlock writer blocks kazoo's ReadLock.
    auto writer = store.try_acquire({}, key);
    ASSERT_TRUE(writer.has_value());
    EXPECT_NE(run_peer({"try_read", zk.hosts(), "/interop/" + key}).find("blocked"),
              std::string::npos);
  }
}

TEST(ZooKeeperOrder, WaitersAreServedInTheOrderTheyQueued) {
  auto& zk = shared_zookeeper();
  const auto key = unique_key("order");
  Store holder_store = open(zk.url("/order"));
  Lease held = holder_store.acquire({}, key);
  std::vector<Store> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(open(zk.url("/order")));
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] {
      Lease l = stores[i].acquire(Context::with_timeout(60s), key);
      std::lock_guard lk(mu);
      order.push_back(i);
    });
    // The next waiter starts once this one's node is in the queue.
    EXPECT_TRUE(eventually([&] {
      auto w = holder_store.inspect({}, key).waiters;
      return w && *w == static_cast<std::uint64_t>(i + 1);
    })) << "waiter "
        << i << " did not queue";
  }
  held.release();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(ZooKeeperLoss, ASessionEndedByAnotherClientFiresTheLossSignal) {
  auto& zk = shared_zookeeper();
  auto backend = detail::zookeeper::make_zookeeper_backend(
      detail::zookeeper::parse_zookeeper_url(zk.url("/loss", "session_timeout=4s")),
      Context::with_timeout(20s));
  Store store = detail::make_store(backend, zk.url("/loss"));
  const auto key = unique_key("session");
  std::atomic<int> calls{0};
  std::atomic<int> reason{-1};
  Lease l =
      store.acquire({}, key, {.ttl = 60s, .auto_renew = true, .on_lost = [&](const LossInfo& i) {
                                reason = static_cast<int>(i.reason);
                                calls++;
                              }});
  auto [id, passwd] = detail::zookeeper::session_credentials(*backend);
  ASSERT_NE(id, 0);
  static const char* hex = "0123456789abcdef";
  std::string passwd_hex;
  for (unsigned char c : passwd) {
    passwd_hex += hex[c >> 4];
    passwd_hex += hex[c & 15];
  }
  // kazoo joins the session (the server drops dlock's connection) and closes it. dlock's
  // client may win the session back before kazoo's close arrives (the server then drops
  // kazoo's connection, and kazoo may fail): then kazoo tries again.
  bool lost = false;
  for (int round = 0; round < 5 && !lost; ++round) {
    run_peer({"end_session", zk.hosts(), std::to_string(id), passwd_hex}, false);
    lost = eventually([&] { return l.lost_token().stop_requested(); }, 10s);
  }
  ASSERT_TRUE(lost) << "no loss signal after the session ended";
  EXPECT_TRUE(eventually([&] { return calls.load() == 1; }));
  EXPECT_EQ(reason.load(), static_cast<int>(LossReason::store_reported));
  EXPECT_FALSE(l.held());
  // The next call gets a new session, and the lock is free (the node went with the session).
  auto again = store.try_acquire(Context::with_timeout(20s), key);
  ASSERT_TRUE(again.has_value());
  EXPECT_GT(again->fencing_token(), l.fencing_token());
}

TEST(ZooKeeperLoss, AConnectionLossWithinTheSessionIsAtRiskThenRecovered) {
  auto& zk = shared_zookeeper();
  // A long session: the client drops the silent connection after 2/3 of it, well before the
  // server would expire the session.
  Store store = open(zk.url("/risk", "session_timeout=15s"));
  const auto key = unique_key("risk");
  std::atomic<int> risks{0}, recoveries{0};
  Lease l = store.acquire({}, key,
                          {.ttl = 60s,
                           .auto_renew = true,
                           .on_at_risk = [&](const RiskInfo&) { risks++; },
                           .on_recovered = [&](const RiskInfo&) { recoveries++; }});
  struct Resume {
    test::ZooKeeperServer& zk;
    ~Resume() { zk.signal(SIGCONT); }
  } resume{zk};
  zk.signal(SIGSTOP);  // The server stops answering; the TCP connection stays open.
  ASSERT_TRUE(eventually([&] { return risks.load() > 0; }, 30s)) << "no at-risk signal";
  zk.signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return recoveries.load() > 0; }, 30s)) << "no recovered signal";
  EXPECT_FALSE(l.lost());
  EXPECT_TRUE(l.held());
  // The session and its node survived: the lock is still taken for others.
  EXPECT_FALSE(open(zk.url("/risk")).try_acquire({}, key).has_value());
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
}

TEST(ZooKeeperLoss, DeletingTheNodeFiresTheLossSignal) {
  auto& zk = shared_zookeeper();
  Store store = open(zk.url("/loss"));
  const auto key = unique_key("deleted");
  Lease l = store.acquire({}, key, {.ttl = 60s, .auto_renew = true});
  std::atomic<clock::rep> lost_at{0};
  std::stop_callback cb(l.lost_token(), [&] { lost_at = clock::now().time_since_epoch().count(); });
  std::this_thread::sleep_for(200ms);
  const auto deleted = clock::now();
  // Another client (kazoo's "hold" lock path is the same layout) deletes the holder's node:
  // here through a second dlock store's force release, which deletes the lowest contender.
  ASSERT_TRUE(open(zk.url("/loss")).force_release({}, key));
  ASSERT_TRUE(eventually([&] { return lost_at.load() != 0; }, 10s));
  const auto latency = clock::time_point(clock::duration(lost_at.load())) - deleted;
  std::printf("[ latency  ] zk: node deleted -> loss signal %.1f ms\n",
              std::chrono::duration<double, std::milli>(latency).count());
  EXPECT_FALSE(l.held());
  EXPECT_EQ(l.release().status, ReleaseStatus::not_held);
}

}  // namespace
}  // namespace dlock
