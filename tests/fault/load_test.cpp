// Load: many waiters on one lock, many locks held at once, on every registered store.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>

#include "conformance/store_kinds.hpp"
#include "dlock/dlock.hpp"

namespace dlock::fault {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::vector<std::string> kinds() {
  std::vector<std::string> out;
  for (auto& k : test::store_kinds()) out.push_back(k.name);
  return out;
}

int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

class Load : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    url_ = test::store_env(GetParam()).url();
    store_ = open(url_);
    static int seq = 0;
    prefix_ = "load-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  }
  std::string url_;
  Store store_;
  std::string prefix_;
};

TEST_P(Load, ThousandWaitersEachAcquireOnce) {
  constexpr int kWaiters = 1000;
  const std::string key = prefix_ + "-hot";
  const int threads_before = thread_count();
  long counter = 0;  // Non-atomic on purpose.
  std::atomic<int> started{0}, errors{0};
  std::atomic<long long> max_wait_us{0};
  Lease first = store_.acquire({}, key, {.ttl = 20s});
  std::vector<std::thread> waiters;
  waiters.reserve(kWaiters);
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      started++;
      auto t0 = clock_type::now();
      try {
        Lease l = store_.acquire(Context::with_timeout(300s), key, {.ttl = 20s});
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0);
        long long prev = max_wait_us;
        while (prev < us.count() && !max_wait_us.compare_exchange_weak(prev, us.count())) {
        }
        counter = counter + 1;
        l.release();
      } catch (const Error& e) {
        errors++;
        ADD_FAILURE() << e.what();
      }
    });
  }
  // Everyone waits behind our hold: count the threads dlock added for all those waiters.
  while (started < kWaiters) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(300ms);
  const int extra_threads = thread_count() - kWaiters - threads_before;
  first.release();
  for (auto& t : waiters) t.join();
  auto m = store_.metrics();
  std::cout << "[ load     ] " << GetParam() << ": 1000 waiters, max wait " << max_wait_us / 1000
            << " ms, attempts " << m.acquire_attempts << ", notifications " << m.notifications
            << ", threads dlock added " << extra_threads << "\n";
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(counter, kWaiters);
  EXPECT_EQ(m.acquisitions, static_cast<std::uint64_t>(kWaiters) + 1);
  // No thread per waiter inside dlock: the process has the test's waiters plus a few.
  EXPECT_LT(extra_threads, 64);
}

TEST_P(Load, ManyLocksHeldAndAutoRenewedForThreeTtls) {
  long locks =
      std::getenv("DLOCK_LOAD_LOCKS") ? std::atol(std::getenv("DLOCK_LOAD_LOCKS")) : 100000;
  if (store_.capabilities().frees_on_crash) {
    // The embedded store keeps one open file and one state file per held lock and renews by
    // rewriting it: 100,000 would exceed RLIMIT_NOFILE. It is meant for a host's handful of
    // locks (docs/stores/file.md).
    locks = std::min<long>(locks, 2000);
  }
  // Renewal must keep up: locks / (TTL / 3) renewals per second. CI sets a longer TTL (and
  // fewer locks for etcd, where each renewal is a consensus round trip) per store.
  const auto ttl = std::max<std::chrono::milliseconds>(
      store_.capabilities().min_ttl,
      std::chrono::milliseconds(
          std::getenv("DLOCK_LOAD_TTL_MS") ? std::atol(std::getenv("DLOCK_LOAD_TTL_MS")) : 3000));
  std::vector<Lease> held(static_cast<std::size_t>(locks));
  std::vector<std::thread> threads;
  std::atomic<long> errors{0};
  constexpr int kThreads = 8;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (long i = t; i < locks; i += kThreads) {
        try {
          held[static_cast<std::size_t>(i)] =
              store_.acquire(Context::with_timeout(30s), prefix_ + "-" + std::to_string(i),
                             {.ttl = ttl, .auto_renew = true});
        } catch (const Error&) {
          errors++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(errors.load(), 0);
  std::this_thread::sleep_for(ttl * 3);
  long still = 0;
  for (auto& l : held) still += l.held() ? 1 : 0;
  auto m = store_.metrics();
  std::cout << "[ load     ] " << GetParam() << ": " << locks << " locks, " << m.renewals
            << " renewals, " << m.losses << " losses over 3 TTLs of " << ttl.count() << " ms\n";
  EXPECT_EQ(still, locks);
  EXPECT_EQ(m.losses, 0u);
  held.clear();
  EXPECT_EQ(store_.metrics().held, 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, Load, ::testing::ValuesIn(kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dlock::fault
