// The fault suite: worker processes contend for one lock on a real store while the test
// pauses, kills or restarts things; the checker then proves nothing unsafe happened.
// Runs on every store kind of the conformance registry that works across processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "conformance/store_kinds.hpp"
#include "dlock/dlock.hpp"
#include "fault/checker.hpp"
#include "support/process.hpp"
#include "support/tcp_proxy.hpp"

namespace dlock::fault {
namespace {

using namespace std::chrono_literals;
using test::Child;

std::vector<std::string> kinds() {
  std::vector<std::string> out;
  for (auto& k : test::store_kinds()) out.push_back(k.name);
  return out;
}

class Faults : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_ = &test::store_env(GetParam());
    if (!env_->cross_process()) GTEST_SKIP() << "in-process store";
    store_ = open(env_->url());
    ttl_ = std::max<std::chrono::milliseconds>(store_.capabilities().min_ttl, 1000ms);
    static int seq = 0;
    key_ = "fault-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  }

  // Starts `n` more workers doing `iters` sections of `hold` each, through `url` (default:
  // the store's own).
  void start_workers(int n, int iters, std::chrono::milliseconds hold, std::string url = {}) {
    if (url.empty()) url = env_->url();
    const int first = static_cast<int>(workers_.size());
    for (int i = first; i < first + n; ++i) {
      const std::string name = "w" + std::to_string(i);
      workers_.emplace_back(
          std::vector<std::string>{DLOCK_FAULT_WORKER, "--store", url, "--key", key_, "--register",
                                   (dir_.path() / "register").string(), "--log",
                                   (dir_.path() / (name + ".log")).string(), "--id",
                                   std::to_string(i), "--iters", std::to_string(iters), "--ttl",
                                   std::to_string(ttl_.count()), "--hold",
                                   std::to_string(hold.count()), "--wait", "60000"},
          (dir_.path() / (name + ".err")).string());
    }
  }

  // Whether worker `pid` is inside its critical section (its marker file exists): the store
  // may name a holder whose grant has not reached it yet (a FIFO waiter just promoted).
  bool inside(pid_t pid) const {
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (workers_[i].pid() == pid)
        return std::filesystem::exists(dir_.path() / ("w" + std::to_string(i) + ".log.inside"));
    return false;
  }

  // The pid of the current holder (from its metadata) that is inside its critical section,
  // waiting up to `timeout` for one.
  pid_t holder_pid(std::chrono::milliseconds timeout = 20s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      try {
        auto info = store_.inspect(Context::with_timeout(2s), key_);
        if (info.held && info.owner.pid > 0 && inside(static_cast<pid_t>(info.owner.pid)))
          return static_cast<pid_t>(info.owner.pid);
      } catch (const Error&) {
      }
      std::this_thread::sleep_for(5ms);
    }
    return -1;
  }

  Report finish(std::chrono::milliseconds wait_bound) {
    for (auto& w : workers_) EXPECT_NE(w.wait(180s), -1) << "a worker did not finish";
    auto r = check(read_logs(dir_.path()), wait_bound);
    std::cout << "[ checker  ] " << GetParam() << ": " << r.summary() << "\n";
    for (int i = 0; i < static_cast<int>(workers_.size()); ++i) {
      auto err = test::read_file(dir_.path() / ("w" + std::to_string(i) + ".err"));
      if (!err.empty()) std::cout << "[ worker " << i << " ] " << err.substr(0, 2000);
    }
    return r;
  }

  test::StoreEnv* env_ = nullptr;
  Store store_;
  std::chrono::milliseconds ttl_{};
  std::string key_;
  test::TempDir dir_{"dlock-fault"};
  std::vector<Child> workers_;
};

TEST_P(Faults, NoFaultBaseline) {
  start_workers(4, 25, 5ms);
  auto r = finish(60s);
  EXPECT_TRUE(r.safe()) << r.summary();
  EXPECT_EQ(r.sections, 100u);
  EXPECT_EQ(r.starved, 0u);
}

TEST_P(Faults, PausedHolderLosesTheLockAndItsLateWriteIsFenced) {
  start_workers(3, 6, 300ms);
  pid_t victim = holder_pid();
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGSTOP);
  std::this_thread::sleep_for(ttl_ * 5 / 2);  // Longer than the TTL: others take over.
  ::kill(victim, SIGCONT);
  auto r = finish(120s);
  EXPECT_TRUE(r.safe()) << r.summary();
  std::size_t lost = 0;
  for (auto& s : read_logs(dir_.path())) lost += s.lost ? 1 : 0;
  EXPECT_GE(lost, 1u) << "the paused holder's loss was not recorded";
}

TEST_P(Faults, CrashedHolderIsReplaced) {
  start_workers(3, 6, 200ms);
  pid_t victim = holder_pid();
  ASSERT_GT(victim, 0);
  auto killed_at = std::chrono::steady_clock::now();
  ::kill(victim, SIGKILL);
  pid_t next = -1;
  const auto bound = env_->crash_release_bound(ttl_);
  while (std::chrono::steady_clock::now() - killed_at < bound * 3 + 10s) {
    next = holder_pid(1s);
    if (next > 0 && next != victim) break;
  }
  auto takeover = std::chrono::steady_clock::now() - killed_at;
  EXPECT_NE(next, victim);
  // Bounded by the TTL or the session timeout (at once on stores that free a crashed
  // holder's lock).
  EXPECT_LT(takeover, bound + 3s);
  auto r = finish(120s);
  EXPECT_TRUE(r.safe()) << r.summary();
}

TEST_P(Faults, StoreRestartSignalsLossAndStaysSafe) {
  // Sections longer than the TTL: the holder at the crash is still inside when its validity
  // ends, so a store that forgot the lock must have made it signal the loss.
  start_workers(3, 2, ttl_ * 3 / 2);
  ASSERT_GT(holder_pid(), 0);
  if (!env_->kill_server()) GTEST_SKIP() << "no server to restart";
  std::this_thread::sleep_for(ttl_ * 2);
  ASSERT_TRUE(env_->restart_server());
  auto r = finish(120s);
  EXPECT_TRUE(r.safe()) << r.summary();
  // The workers recover: every section is eventually done after the restart.
  EXPECT_EQ(r.sections, 6u);
  if (!store_.capabilities().durable) {
    // A store that forgets its locks on restart: the holder at the crash must have been told.
    std::size_t lost = 0;
    for (auto& s : read_logs(dir_.path())) lost += s.lost ? 1 : 0;
    EXPECT_GE(lost, 1u) << "the restart lost the lock without a loss signal";
  }
}

TEST_P(Faults, ConnectionCutLongerThanTheTtl) {
  const auto port = env_->server_port();
  if (port == 0) GTEST_SKIP() << "no TCP server";
  test::TcpProxy proxy(port);
  std::string url = env_->url();
  const std::string from = ":" + std::to_string(port);
  auto at = url.find(from);
  ASSERT_NE(at, std::string::npos) << url;
  url.replace(at, from.size(), ":" + std::to_string(proxy.port()));
  // One worker behind the proxy takes the lock and holds it for long sections.
  start_workers(1, 2, ttl_ * 3, url);
  ASSERT_GT(holder_pid(), 0);
  start_workers(2, 4, 50ms);  // Direct workers wait for it.
  std::this_thread::sleep_for(200ms);
  proxy.blackhole();  // Renewals and replies vanish for longer than the TTL.
  std::this_thread::sleep_for(ttl_ * 5 / 2);
  proxy.drop();
  std::this_thread::sleep_for(500ms);
  proxy.restore();
  auto r = finish(120s);
  EXPECT_TRUE(r.safe()) << r.summary();
  std::size_t lost = 0;
  for (auto& s : read_logs(dir_.path())) lost += s.lost ? 1 : 0;
  EXPECT_GE(lost, 1u) << "the cut-off holder's loss was not recorded";
}

INSTANTIATE_TEST_SUITE_P(Stores, Faults, ::testing::ValuesIn(kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dlock::fault
