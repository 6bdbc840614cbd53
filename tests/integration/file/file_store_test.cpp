// The embedded file:// store across processes: mutual exclusion with a non-atomic counter,
// crash of a holder (kill -9) freeing the lock at once, a live holder whose TTL passed,
// fencing tokens across reopen, directory safety checks and URL forms.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "dlock/dlock.hpp"
#include "dlock/file.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using dlock::test::Child;
using dlock::test::TempDir;

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

// ---- worker processes (argv[1] == "--worker") ----

// contend URL KEY ITERS COUNTER TOKENS: ITERS times: lock, counter += 1 the slow way, log token.
int worker_contend(const std::string& url, const std::string& key, int iters,
                   const std::string& counter, const std::string& tokens) {
  auto store = dlock::open(url);
  std::ofstream log(tokens);
  for (int i = 0; i < iters; ++i) {
    auto lease = store.acquire(dlock::Context::with_timeout(60s), key, {.ttl = 10s});
    long v = 0;
    std::ifstream(counter) >> v;
    std::this_thread::sleep_for(100us);  // Widen the race window the lock must close.
    std::ofstream(counter, std::ios::trunc) << v + 1;
    log << lease.fencing_token() << "\n";
    lease.release();
  }
  return 0;
}

// hold URL KEY TTL_MS: acquire without renewal, then sleep until killed.
int worker_hold(const std::string& url, const std::string& key, long ttl_ms) {
  auto store = dlock::open(url);
  auto lease = store.acquire(dlock::Context::with_timeout(30s), key,
                             {.ttl = std::chrono::milliseconds(ttl_ms), .metadata = "worker"});
  for (;;) ::pause();
}

int run_worker(int argc, char** argv) {
  std::vector<std::string> a(argv + 2, argv + argc);
  try {
    if (a.size() == 6 && a[0] == "contend") {
      return worker_contend(a[1], a[2], std::stoi(a[3]), a[4], a[5]);
    }
    if (a.size() == 4 && a[0] == "hold") return worker_hold(a[1], a[2], std::stol(a[3]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "worker: bad arguments\n");
  return 64;
}

// ---- helpers ----

std::string url_of(const TempDir& d) { return "file://" + d.path().string(); }

bool wait_until_locked(dlock::Store& s, const std::string& key, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (s.is_locked({}, key)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

dlock::errc code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const dlock::Error& e) {
    return static_cast<dlock::errc>(e.code().value());
  }
  return dlock::errc{};
}

// ---- tests ----

TEST(FileStore, ProcessesExcludeEachOtherAndTokensStrictlyIncrease) {
  TempDir dir("dlock-file-it");
  constexpr int kWorkers = 4, kIters = 100;
  const auto counter = (dir.path() / "counter.txt").string();
  std::vector<Child> kids;
  for (int w = 0; w < kWorkers; ++w) {
    kids.emplace_back(
        std::vector<std::string>{self_exe(), "--worker", "contend", url_of(dir), "shared/counter",
                                 std::to_string(kIters), counter,
                                 (dir.path() / ("tokens" + std::to_string(w))).string()},
        (dir.path() / "worker.log").string());
  }
  for (auto& k : kids) {
    int st = k.wait(120s);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "status " << st << "\n"
        << dlock::test::read_file(dir.path() / "worker.log");
  }
  long total = 0;
  std::ifstream(counter) >> total;
  EXPECT_EQ(total, kWorkers * kIters);  // A lost update would mean two holders at once.
  std::set<std::uint64_t> all;
  for (int w = 0; w < kWorkers; ++w) {
    std::ifstream in(dir.path() / ("tokens" + std::to_string(w)));
    std::uint64_t t = 0, last = 0;
    int n = 0;
    while (in >> t) {
      EXPECT_GT(t, last) << "worker " << w;
      last = t;
      all.insert(t);
      ++n;
    }
    EXPECT_EQ(n, kIters);
  }
  // Every grant got its own token: exactly 1..N in some interleaving.
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kWorkers * kIters));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kWorkers * kIters));
}

TEST(FileStore, KillNineFreesTheLockAtOnceAndWakesTheWaiter) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  Child holder({self_exe(), "--worker", "hold", url_of(dir), "crashy", "600000"});
  ASSERT_TRUE(wait_until_locked(store, "crashy", 20s));
  auto info = store.inspect({}, "crashy");
  EXPECT_EQ(info.owner.pid, holder.pid());
  EXPECT_EQ(info.owner.text, "worker");
  EXPECT_GT(info.ttl_remaining, 500s);

  std::atomic<bool> got{false};
  std::uint64_t token = 0;
  std::thread waiter([&] {
    // The holder's TTL is 10 minutes: only the kernel's release can let this through in time.
    auto l = store.acquire(dlock::Context::with_timeout(60s), "crashy", {.ttl = 10s});
    token = l.fencing_token();
    got = true;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(got.load());
  holder.signal(SIGKILL);
  holder.wait(10s);
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_GT(token, info.fencing_token);
}

TEST(FileStore, LiveHolderPastItsTtlLosesTheLock) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  Child holder({self_exe(), "--worker", "hold", url_of(dir), "slow", "500"});
  ASSERT_TRUE(wait_until_locked(store, "slow", 20s));
  auto first = store.inspect({}, "slow").fencing_token;
  // The holder is alive (its kernel lock stays) but does not renew: its TTL decides.
  auto l = store.acquire(dlock::Context::with_timeout(20s), "slow", {.ttl = 10s});
  EXPECT_TRUE(holder.running());
  EXPECT_GT(l.fencing_token(), first);
  auto info = store.inspect({}, "slow");
  EXPECT_TRUE(info.held);
  EXPECT_EQ(info.owner.pid, ::getpid());
}

TEST(FileStore, WaiterIsWokenByTheReleaseNotByPolling) {
  TempDir dir("dlock-file-it");
  auto holder = dlock::open(url_of(dir));
  auto waiter = dlock::open(url_of(dir));
  auto held = holder.acquire({}, "wake", {.ttl = 60s});
  std::thread t([&] {
    // Backoff would only retry after 20, 40, 80 ... ms, up to 30 s: a slow poll, so the
    // notification count tells whether inotify woke it.
    auto l = waiter.acquire(dlock::Context::with_timeout(30s), "wake",
                            {.retry = {.delay = 30s, .max_delay = 30s}});
    EXPECT_TRUE(l.held());
  });
  std::this_thread::sleep_for(300ms);
  held.release();
  t.join();
  EXPECT_GE(waiter.metrics().notifications, 1u);
  EXPECT_LE(waiter.metrics().acquire_attempts, 3u);
}

TEST(FileStore, ManyHeldLocksCostNoFileDescriptors) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir) + "?sync=false");
  auto fds = [] {
    return std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{});
  };
  std::vector<dlock::Lease> held;
  held.push_back(store.acquire({}, "lock-0"));
  const auto before = fds();
  for (int i = 1; i < 200; ++i) held.push_back(store.acquire({}, "lock-" + std::to_string(i)));
  EXPECT_EQ(fds(), before);  // One `alive` descriptor per store object, whatever it holds.
  EXPECT_EQ(store.list({}, "lock-").size(), 200u);
}

TEST(FileStore, FencingTokensSurviveReopening) {
  TempDir dir("dlock-file-it");
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto store = dlock::open(dlock::FileConfig{.dir = dir.path()});
    auto l = store.acquire({}, "job");
    EXPECT_GT(l.fencing_token(), last);
    last = l.fencing_token();
    store.close();
  }
  EXPECT_EQ(last, 3u);
}

TEST(FileStore, KeysMayHoldSlashesAndAnyByte) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  const std::string odd("a/b/../c\n\0\xff", 11);
  auto l1 = store.acquire({}, odd);
  auto l2 = store.acquire({}, "a/other");
  auto rows = store.list({}, "a/");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key, odd);
  EXPECT_EQ(rows[1].key, "a/other");
  for (auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().parent_path(), dir.path());  // Nothing escaped the directory.
  }
  EXPECT_EQ(
      code_of([&] { store.acquire({}, std::string(store.capabilities().max_key_bytes + 1, 'k')); }),
      dlock::errc::invalid_argument);
}

TEST(FileStore, RefusesUnsafeDirectories) {
  TempDir dir("dlock-file-it");
  auto open_url = [&](const fs::path& p) { dlock::open("file://" + p.string()); };
  auto shared = dir.path() / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 0777), 0);
  EXPECT_EQ(code_of([&] { open_url(shared); }), dlock::errc::auth_failed);
  ASSERT_EQ(::chmod(shared.c_str(), 0770), 0);
  EXPECT_EQ(code_of([&] { open_url(shared); }), dlock::errc::auth_failed);
  if (::geteuid() == 0) {
    auto foreign = dir.path() / "foreign";
    ASSERT_EQ(::mkdir(foreign.c_str(), 0700), 0);
    ASSERT_EQ(::chown(foreign.c_str(), 65534, 65534), 0);
    EXPECT_EQ(code_of([&] { open_url(foreign); }), dlock::errc::auth_failed);
  }
  auto plain = dir.path() / "plain-file";
  std::ofstream(plain) << "x";
  EXPECT_EQ(code_of([&] { open_url(plain); }), dlock::errc::invalid_argument);
  auto fresh = dir.path() / "fresh";
  open_url(fresh);
  struct stat st {};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(FileStore, UrlForms) {
  TempDir dir("dlock-file-it");
  ::setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);
  EXPECT_EQ(dlock::default_file_store_dir(), dir.path() / "dlock");
  auto s = dlock::open("file://");
  s.acquire({}, "via-default").release();
  EXPECT_TRUE(fs::is_directory(dir.path() / "dlock"));
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(dlock::default_file_store_dir(), "/tmp/dlock-" + std::to_string(::geteuid()));
  EXPECT_EQ(code_of([&] { dlock::open("file://somehost/dir"); }), dlock::errc::invalid_argument);
  EXPECT_EQ(code_of([&] { dlock::open(url_of(dir) + "?bogus=1"); }), dlock::errc::invalid_argument);
  auto nosync = dlock::open(url_of(dir) + "?sync=false");
  EXPECT_TRUE(nosync.try_acquire({}, "k").has_value());
}

TEST(FileStore, RecordFromAnEarlierBootIsFree) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  Child holder({self_exe(), "--worker", "hold", url_of(dir), "boot", "600000"});
  ASSERT_TRUE(wait_until_locked(store, "boot", 20s));
  // Pretend the record was written before a reboot: its deadline means nothing any more.
  const auto record = dir.path() / "k-626f6f74.state";  // hex("boot")
  std::string text = dlock::test::read_file(record);
  std::string boot_id = dlock::test::read_file("/proc/sys/kernel/random/boot_id");
  boot_id.erase(boot_id.find_last_not_of('\n') + 1);
  auto at = text.find(boot_id);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, boot_id.size(), std::string(boot_id.size(), '0'));
  std::ofstream(dir.path() / "rewritten", std::ios::trunc) << text;
  fs::rename(dir.path() / "rewritten", record);
  EXPECT_FALSE(store.is_locked({}, "boot"));
  auto l = store.try_acquire({}, "boot");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->fencing_token(), 2u);
}

TEST(FileStore, CorruptRecordIsAProtocolError) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  store.acquire({}, "x").release();
  std::ofstream(dir.path() / "k-78.state", std::ios::trunc) << "garbage";
  EXPECT_EQ(code_of([&] { store.inspect({}, "x"); }), dlock::errc::protocol_error);
}

TEST(FileStore, ForceReleaseFromAnotherProcessEndsTheGrant) {
  TempDir dir("dlock-file-it");
  auto store = dlock::open(url_of(dir));
  Child holder({self_exe(), "--worker", "hold", url_of(dir), "ops", "600000"});
  ASSERT_TRUE(wait_until_locked(store, "ops", 20s));
  EXPECT_TRUE(store.force_release({}, "ops"));
  EXPECT_FALSE(store.is_locked({}, "ops"));
  EXPECT_FALSE(store.force_release({}, "ops"));
  EXPECT_TRUE(store.try_acquire({}, "ops").has_value());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--worker") return run_worker(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
