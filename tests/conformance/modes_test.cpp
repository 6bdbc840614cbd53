// The conformance suite, part two: read-write locks, semaphores, reentrancy and multi-locks on
// every store kind that offers them (a kind without a mode is checked to refuse it, in
// conformance_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "conformance/fixture.hpp"

namespace dlock::test {
namespace {

#define REQUIRE_MODE(flag) \
  if (!caps_.flag) GTEST_SKIP() << store_.scheme() << " does not offer " #flag

// ---- read-write locks ----

TEST_P(Conformance, ReadersHoldTogether) {
  REQUIRE_MODE(shared_mode);
  Store other = another();
  Lease r1 = store_.acquire({}, key(), {.mode = LockMode::shared()});
  Lease r2 = other.acquire(Context::with_timeout(10s), key(), {.mode = LockMode::shared()});
  EXPECT_TRUE(r1.held());
  EXPECT_TRUE(r2.held());
  EXPECT_EQ(r2.mode(), LockMode::shared());
  EXPECT_GT(r2.fencing_token(), r1.fencing_token());
  auto info = store_.inspect({}, key());
  ASSERT_EQ(info.holders.size(), 2u);
  for (auto& h : info.holders) EXPECT_EQ(h.mode, LockMode::shared());
}

TEST_P(Conformance, AWriterExcludesReadersAndReadersExcludeAWriter) {
  REQUIRE_MODE(shared_mode);
  Store other = another();
  {
    Lease w = store_.acquire({}, key());
    EXPECT_FALSE(other.try_acquire({}, key(), {.mode = LockMode::shared()}).has_value());
  }
  Lease r = store_.acquire({}, key(), {.mode = LockMode::shared()});
  EXPECT_FALSE(other.try_acquire({}, key()).has_value());
  r.release();
  EXPECT_TRUE(other.try_acquire({}, key()).has_value());
}

TEST_P(Conformance, AWaitingWriterIsNotStarvedByNewReaders) {
  REQUIRE_MODE(shared_mode);
  if (!caps_.fifo) GTEST_SKIP() << store_.scheme() << " does not serve waiters in order";
  Store writer_store = another(), reader_store = another();
  Lease r1 = store_.acquire({}, key(), {.mode = LockMode::shared()});
  std::atomic<bool> writer_has{false};
  std::thread writer([&] {
    Lease w = writer_store.acquire(Context::with_timeout(30s), key(), {.ttl = 10s});
    writer_has = true;
    std::this_thread::sleep_for(100ms);
  });
  // The writer is queued once the store counts a waiter (or, without counts, after a while).
  for (auto until = clock::now() + 10s; clock::now() < until;) {
    auto w = store_.inspect({}, key()).waiters;
    if (!w || *w >= 1) break;
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(100ms);
  // A new reader does not overtake the waiting writer...
  EXPECT_FALSE(reader_store.try_acquire({}, key(), {.mode = LockMode::shared()}).has_value());
  EXPECT_FALSE(writer_has.load());
  r1.release();  // ...and the writer goes first.
  Lease r2 = reader_store.acquire(Context::with_timeout(30s), key(), {.mode = LockMode::shared()});
  EXPECT_TRUE(writer_has.load());
  writer.join();
}

TEST_P(Conformance, AWriterGetsInUnderAStreamOfReaders) {
  REQUIRE_MODE(shared_mode);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  std::vector<Store> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(another());
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&, i] {
      while (!stop) {
        try {
          Lease r = stores[i].acquire(Context::with_timeout(20s), key(),
                                      {.ttl = 10s, .mode = LockMode::shared()});
          reads++;
          std::this_thread::sleep_for(5ms);
        } catch (const Error&) {
        }
      }
    });
  }
  while (reads < 10) std::this_thread::sleep_for(5ms);
  // Readers overlap all the time, so without fairness the writer could wait forever.
  const auto start = clock::now();
  Lease w = store_.acquire(Context::with_timeout(20s), key(), {.ttl = 10s});
  const auto waited = clock::now() - start;
  EXPECT_TRUE(w.held());
  w.release();
  stop = true;
  for (auto& t : readers) t.join();
  std::printf(
      "[ modes    ] %s: writer waited %lld ms under 4 readers (%d reads)\n", GetParam().c_str(),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()),
      reads.load());
}

TEST_P(Conformance, SharedMutexExcludesWritersAndLetsReadersOverlap) {
  REQUIRE_MODE(shared_mode);
  constexpr int kThreads = 6, kIters = 30;
  SharedMutex m(store_, key());
  long counter = 0;  // Written under the write side only, deliberately non-atomic.
  std::atomic<int> writers_in{0}, readers_in{0}, max_readers{0}, violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIters; ++i) {
        if ((i + t) % 3 == 0) {
          std::unique_lock lk(m);
          if (writers_in.fetch_add(1) != 0 || readers_in.load() != 0) violations++;
          long v = counter;
          std::this_thread::yield();
          counter = v + 1;
          writers_in.fetch_sub(1);
        } else {
          std::shared_lock lk(m);
          int now = readers_in.fetch_add(1) + 1;
          int seen = max_readers.load();
          while (now > seen && !max_readers.compare_exchange_weak(seen, now)) {
          }
          if (writers_in.load() != 0) violations++;
          std::this_thread::sleep_for(2ms);
          readers_in.fetch_sub(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  int writes = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kIters; ++i) writes += (i + t) % 3 == 0;
  }
  EXPECT_EQ(counter, writes);
  EXPECT_GE(max_readers.load(), 2) << "readers never held together";
}

TEST_P(Conformance, UpgradingAReadLockIsRefused) {
  REQUIRE_MODE(shared_mode);
  SharedMutex m(store_, key());
  std::shared_lock r(m);
  try {
    m.lock();
    FAIL() << "an upgrade was granted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::would_deadlock) << e.what();
  }
  EXPECT_FALSE(m.try_lock());
}

TEST_P(Conformance, AWriterDowngradesToAReaderWithoutAGap) {
  REQUIRE_MODE(downgrades);
  Store other = another();
  Lease w = store_.acquire({}, key());
  const auto fence = w.fencing_token();
  w.downgrade();
  EXPECT_EQ(w.mode(), LockMode::shared());
  EXPECT_EQ(w.fencing_token(), fence);
  EXPECT_TRUE(w.held());
  EXPECT_FALSE(other.try_acquire({}, key()).has_value());  // Still no writer...
  auto r = other.try_acquire({}, key(), {.mode = LockMode::shared()});
  EXPECT_TRUE(r.has_value());  // ...but readers join.
  SharedMutex m(store_, key() + "-m");
  m.lock();
  m.downgrade();
  EXPECT_FALSE(m.try_lock());  // This thread now reads.
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// ---- semaphores ----

TEST_P(Conformance, ASemaphoreNeverHasMoreThanItsLimit) {
  REQUIRE_MODE(permits_mode);
  constexpr int kLimit = 3, kThreads = 8, kIters = 15;
  std::atomic<int> inside{0}, peak{0};
  std::vector<std::thread> threads;
  std::vector<Store> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(another());
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Semaphore sem(stores[t % stores.size()], key(), kLimit, {.ttl = 10s});
      for (int i = 0; i < kIters; ++i) {
        Permit p = sem.acquire(Context::with_timeout(60s));
        int now = inside.fetch_add(1) + 1;  // Recorded inside the critical section.
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(1ms);
        inside.fetch_sub(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(peak.load(), kLimit);
  EXPECT_GE(peak.load(), 2) << "permits were never held together";
}

TEST_P(Conformance, PermitsCountAndAvailableReportsWhatIsLeft) {
  REQUIRE_MODE(permits_mode);
  Semaphore sem(store_, key(), 5);
  Semaphore other(another(), key(), 5);
  EXPECT_EQ(sem.available({}), 5u);
  Permit three = sem.acquire({}, 3);
  EXPECT_EQ(three.mode(), LockMode::permits(3, 5));
  EXPECT_EQ(other.available({}), 2u);
  EXPECT_FALSE(other.try_acquire({}, 3).has_value());
  auto two = other.try_acquire({}, 2);
  ASSERT_TRUE(two.has_value());
  EXPECT_GT(two->fencing_token(), three.fencing_token());
  EXPECT_EQ(sem.available({}), 0u);
  three.release();
  EXPECT_EQ(sem.available({}), 3u);
  EXPECT_THROW(sem.acquire({}, 6), Error);
  EXPECT_THROW(Semaphore(store_, key(), 0), Error);
}

TEST_P(Conformance, ASemaphoreOpenedWithAnotherLimitIsRefused) {
  REQUIRE_MODE(permits_mode);
  Semaphore three(store_, key(), 3);
  Permit p = three.acquire({});
  Semaphore four(another(), key(), 4);
  try {
    four.acquire(Context::with_timeout(2s));
    FAIL() << "a second limit was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument) << e.what();
  }
}

TEST_P(Conformance, ExpiredPermitsComeBack) {
  REQUIRE_MODE(permits_mode);
  Semaphore sem(store_, key(), 2, {.ttl = short_ttl_});
  Permit a = sem.acquire({});
  Permit b = sem.acquire({});
  Semaphore other(another(), key(), 2);
  EXPECT_FALSE(other.try_acquire({}).has_value());
  // Nobody renews them: after the TTL the permits return.
  Permit again = other.acquire(Context::with_timeout(short_ttl_ * 4 + 5s), 2);
  EXPECT_TRUE(again.held());
  EXPECT_TRUE(a.lost() || !a.held());
}

// ---- reentrancy ----

TEST_P(Conformance, AReentrantOwnerGetsItsGrantAgainWithoutARoundTrip) {
  LockOptions o{.reentrant = true};
  Lease outer = store_.acquire({}, key(), o);
  const auto attempts = store_.metrics().acquire_attempts;
  Lease inner = store_.acquire(Context::with_timeout(1s), key(), o);
  EXPECT_EQ(store_.metrics().acquire_attempts, attempts);  // No round trip.
  EXPECT_EQ(inner.fencing_token(), outer.fencing_token());
  EXPECT_EQ(inner.release().status, ReleaseStatus::released);
  EXPECT_TRUE(store_.is_locked({}, key()));  // The outer share still holds it.
  EXPECT_TRUE(outer.held());
  EXPECT_EQ(outer.release().status, ReleaseStatus::released);
  EXPECT_FALSE(store_.is_locked({}, key()));
  // Another thread is another owner: it waits like anyone else.
  Lease held = store_.acquire({}, key(), o);
  std::thread([&] { EXPECT_FALSE(store_.try_acquire({}, key(), o).has_value()); }).join();
  // An owner id of the caller's own spans threads.
  LockOptions job{.reentrant = true, .owner = "job-7"};
  Lease a = store_.acquire({}, key("job"), job);
  std::thread([&] {
    auto b = store_.try_acquire({}, key("job"), job);
    EXPECT_TRUE(b.has_value());
  }).join();
  EXPECT_TRUE(a.held());
}

TEST_P(Conformance, WithoutReentrancyASecondAcquisitionWaits) {
  Lease first = store_.acquire({}, key());
  EXPECT_FALSE(store_.try_acquire({}, key()).has_value());
}

// ---- multi-lock ----

TEST_P(Conformance, AcquireAllTakesEveryKeyOrNone) {
  Store other = another();
  Lease b = other.acquire({}, key("b"));
  try {
    store_.acquire_all({}, {key("a"), key("b"), key("c")}, {.wait = WaitPolicy::up_to(300ms)});
    FAIL() << "acquired a group with a held member";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::timeout) << e.what();
  }
  EXPECT_FALSE(store_.is_locked({}, key("a")));  // None of the group stays held.
  b.release();
  MultiLease all = store_.acquire_all({}, {key("c"), key("a"), key("b"), key("a")});
  ASSERT_EQ(all.size(), 3u);                   // The duplicate is dropped...
  EXPECT_EQ(all.leases()[0].key(), key("a"));  // ...and the keys are in order.
  EXPECT_TRUE(all.held());
  auto lost = all.lost_token();
  EXPECT_FALSE(lost.stop_requested());
  EXPECT_EQ(all.release().status, ReleaseStatus::released);
  EXPECT_FALSE(store_.is_locked({}, key("b")));
}

TEST_P(Conformance, OverlappingGroupsInOppositeOrdersNeverDeadlock) {
  constexpr int kIters = 20;
  long counter = 0;
  std::vector<std::thread> threads;
  std::vector<Store> stores{another(), another()};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> keys{key("x"), key("y"), key("z")};
      if (t == 1) std::reverse(keys.begin(), keys.end());
      for (int i = 0; i < kIters; ++i) {
        MultiLease g = stores[t].acquire_all(Context::with_timeout(30s), keys, {.ttl = 10s});
        long v = counter;
        std::this_thread::yield();
        counter = v + 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter, 2 * kIters);
}

TEST_P(Conformance, AGroupsLossSignalFiresWhenAnyMemberIsLost) {
  MultiLease g = store_.acquire_all({}, {key("a"), key("b")}, {.ttl = short_ttl_});
  auto lost = g.lost_token();
  // Without renewal the members' validity ends: the group is lost.
  auto until = clock::now() + short_ttl_ * 3 + 2s;
  while (!lost.stop_requested() && clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(lost.stop_requested());
  EXPECT_FALSE(g.held());
}

}  // namespace
}  // namespace dlock::test
