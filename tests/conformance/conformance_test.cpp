// The conformance suite: what every store must do. Parameterized over the registered stores
// (store_kinds.hpp); each store joins with one line.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "conformance/fixture.hpp"
#include "dlock/dlock.hpp"

namespace dlock::test {
namespace {

TEST_P(Conformance, MutualExclusionUnderThreads) {
  constexpr int kThreads = 16, kIters = 200;
  const std::string k = key();
  long counter = 0;  // Deliberately non-atomic: the lock is what protects it.
  std::atomic<int> inside{0}, overlaps{0};
  std::vector<std::thread> threads;
  std::vector<Store> stores;
  for (int t = 0; t < 4; ++t) stores.push_back(another());
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = stores[t % stores.size()];
      for (int i = 0; i < kIters; ++i) {
        Lease l = s.acquire(Context::with_timeout(60s), k, {.ttl = 10s});
        if (inside.fetch_add(1) != 0) overlaps++;
        long v = counter;
        std::this_thread::yield();
        counter = v + 1;
        inside.fetch_sub(1);
        EXPECT_EQ(l.release().status, ReleaseStatus::released);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, kThreads * kIters);
}

TEST_P(Conformance, TryAcquireDoesNotWait) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  auto start = clock::now();
  auto r = other.try_acquire({}, key());
  EXPECT_FALSE(r.has_value());
  EXPECT_LT(clock::now() - start, 2s);  // One round trip, not a TTL-long wait.
  EXPECT_FALSE(other.try_lock({}, key()));
}

TEST_P(Conformance, LockHonoursDeadline) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  auto start = clock::now();
  try {
    other.acquire(Context::with_timeout(300ms), key());
    FAIL() << "acquired a held lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::timeout) << e.what();
  }
  auto took = clock::now() - start;
  EXPECT_GE(took, 300ms);
  // Bounded by the deadline, not by the holder's 30 s TTL (the margin allows a sanitizer
  // build on a loaded machine its round trips).
  EXPECT_LT(took, 300ms + 1s);
}

TEST_P(Conformance, WaitPolicyUpToIsADeadline) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  try {
    other.acquire({}, key(), {.wait = WaitPolicy::up_to(200ms)});
    FAIL() << "acquired a held lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::timeout) << e.what();
  }
  EXPECT_THROW(other.acquire({}, key(), {.wait = WaitPolicy::none()}), Error);
}

TEST_P(Conformance, LockHonoursCancellation) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  std::stop_source stop;
  clock::time_point cancelled_at;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancelled_at = clock::now();
    stop.request_stop();
  });
  try {
    other.acquire(Context::with_stop(stop.get_token()), key());
    FAIL() << "acquired a held lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::cancelled) << e.what();
  }
  auto late = clock::now() - cancelled_at;
  canceller.join();
  EXPECT_LT(late, 1s);  // At once, not after the holder's 30 s TTL (margin as above).
}

TEST_P(Conformance, WaiterGetsLockAfterRelease) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    Lease l = other.acquire(Context::with_timeout(20s), key());
    got = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(got.load());
  held.release();
  waiter.join();
  EXPECT_TRUE(got.load());
}

TEST_P(Conformance, TtlExpiryFreesTheLock) {
  Lease held = store_.acquire({}, key(), {.ttl = short_ttl_});
  EXPECT_TRUE(store_.is_locked({}, key()));
  Store other = another();
  auto got = other.acquire(Context::with_timeout(short_ttl_ * 3 + 5s), key());
  EXPECT_TRUE(got.held());
  EXPECT_FALSE(held.held());
  EXPECT_GT(got.fencing_token(), held.fencing_token());
}

TEST_P(Conformance, StaleHandleCannotReleaseOrRenewNewerHolder) {
  Lease old = store_.acquire({}, key(), {.ttl = short_ttl_});
  Store other = another();
  Lease fresh = other.acquire(Context::with_timeout(short_ttl_ * 3 + 5s), key());
  EXPECT_THROW(old.renew({}, 5s), Error);
  auto r = old.release();
  EXPECT_EQ(r.status, ReleaseStatus::not_held);
  EXPECT_TRUE(fresh.held());
  EXPECT_TRUE(store_.is_locked({}, key()));
  auto info = store_.inspect({}, key());
  EXPECT_EQ(info.fencing_token, fresh.fencing_token());
}

TEST_P(Conformance, OnlyTheOwnerCanUnlockByKey) {
  ASSERT_TRUE(store_.try_lock({}, key()));
  Store other = another();
  try {
    other.unlock({}, key());
    FAIL() << "a non-owner unlocked";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::not_held);
  }
  EXPECT_THROW(other.renew({}, key(), 5s), Error);
  EXPECT_TRUE(store_.is_locked({}, key()));
  store_.unlock({}, key());
  EXPECT_FALSE(store_.is_locked({}, key()));
  EXPECT_THROW(store_.unlock({}, key()), Error);
}

TEST_P(Conformance, SameKeyTwiceThroughOneObjectNeverOverwrites) {
  ASSERT_TRUE(store_.try_lock({}, key()));
  auto first = store_.fencing_token(key());
  EXPECT_FALSE(store_.try_lock({}, key()));
  EXPECT_EQ(store_.fencing_token(key()), first);
  EXPECT_THROW(store_.lock(Context::with_timeout(200ms), key()), Error);
  std::thread unlocker([&] {
    std::this_thread::sleep_for(200ms);
    store_.unlock({}, key());
  });
  store_.lock(Context::with_timeout(20s), key());
  unlocker.join();
  EXPECT_GT(store_.fencing_token(key()), first);
  store_.unlock({}, key());
}

TEST_P(Conformance, RenewExtends) {
  Lease l = store_.acquire({}, key(), {.ttl = short_ttl_});
  auto before = l.valid_until();
  l.renew({}, short_ttl_ * 10);
  EXPECT_GT(l.valid_until(), before);
  std::this_thread::sleep_for(short_ttl_ * 2);
  EXPECT_TRUE(l.held());
  EXPECT_TRUE(another().is_locked({}, key()));
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
}

TEST_P(Conformance, RenewAfterReleaseIsNotHeld) {
  Lease l = store_.acquire({}, key());
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  try {
    l.renew({}, 5s);
    FAIL() << "renewed a released lease";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::not_held) << e.what();
  }
  EXPECT_FALSE(l.lost());  // A normal release is not a loss.
}

TEST_P(Conformance, FencingTokensStrictlyIncrease) {
  std::uint64_t last = 0;
  Store other = another();
  for (int i = 0; i < 20; ++i) {
    Store& s = (i % 2) ? other : store_;
    Lease l = s.acquire({}, key());
    EXPECT_GT(l.fencing_token(), last);
    last = l.fencing_token();
  }
}

TEST_P(Conformance, AutoRenewKeepsTheLockAcrossManyTtls) {
  Lease l = store_.acquire({}, key(), {.ttl = short_ttl_, .auto_renew = true});
  Store other = another();
  auto until = clock::now() + short_ttl_ * 5;
  while (clock::now() < until) {
    EXPECT_FALSE(other.try_acquire({}, key()).has_value());
    std::this_thread::sleep_for(short_ttl_ / 4);
  }
  EXPECT_TRUE(l.held());
  EXPECT_FALSE(l.lost());
  EXPECT_GE(store_.metrics().renewals, 3u);
}

TEST_P(Conformance, LossSignalFiresWhenRenewalIsRejected) {
  std::atomic<int> calls{0};
  Lease l = store_.acquire(
      {}, key(),
      {.ttl = short_ttl_, .auto_renew = true, .on_lost = [&](const LossInfo& i) {
         // Rejected at the next renewal, or reported by the store at once.
         EXPECT_TRUE(i.reason == LossReason::rejected || i.reason == LossReason::store_reported)
             << static_cast<int>(i.reason);
         calls++;
       }});
  auto lost = l.lost_token();
  std::atomic<bool> stopped{false};
  std::stop_callback cb(lost, [&] { stopped = true; });
  ASSERT_TRUE(another().force_release({}, key()));
  auto until = clock::now() + short_ttl_ * 3 + 2s;
  while (!stopped && clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(stopped.load());
  // The token fires first; the callback runs just after it, on the same core thread.
  for (auto end = clock::now() + 2s; calls == 0 && clock::now() < end;) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(l.held());
  EXPECT_EQ(l.release().status, ReleaseStatus::not_held);
  EXPECT_TRUE(l.lost());  // Still reported after the release.
  EXPECT_TRUE(l.lost_token().stop_requested());
}

// The kinds whose store reports a force release to the holder itself (issue 11); the others
// join this list as they gain it.
bool reports_force_release(const std::string& kind) {
  for (const char* k :
       {"memory", "etcd", "etcd_txn", "etcd_secure", "etcd_txn_secure", "postgres", "zk", "redis",
        "rediss", "redis_sentinel", "redis_cluster", "rediss_cluster"}) {
    if (kind == k) return true;
  }
  return false;
}

TEST_P(Conformance, ForceReleaseFiresTheLossSignalWithinASecond) {
  if (!reports_force_release(GetParam())) GTEST_SKIP() << "no store-reported loss yet";
  std::mutex mu;
  int calls = 0;
  LossReason reason{};
  Lease l =
      store_.acquire({}, key(), {.ttl = 30s, .auto_renew = true, .on_lost = [&](const LossInfo& i) {
                                   std::lock_guard lk(mu);
                                   reason = i.reason;
                                   calls++;
                                 }});
  std::atomic<bool> stopped{false};
  std::atomic<clock::rep> stopped_at{0};
  std::stop_callback cb(l.lost_token(), [&] {
    stopped_at = clock::now().time_since_epoch().count();
    stopped = true;
  });
  std::this_thread::sleep_for(300ms);  // Held for a while, as most locks are.
  Store other = another();
  // From the call: the holder may hear of it before the caller has the reply.
  const auto released = clock::now();
  ASSERT_TRUE(other.force_release({}, key()));
  for (auto until = released + 5s; !stopped && clock::now() < until;) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(stopped.load()) << "no loss signal";
  const auto latency = clock::time_point(clock::duration(stopped_at.load())) - released;
  EXPECT_LT(latency, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(latency).count()
                         << " ms";
  std::printf("[ latency  ] %s: force release -> loss signal %.1f ms\n", GetParam().c_str(),
              std::chrono::duration<double, std::milli>(latency).count());
  // The token fires first; the callback runs just after it, on the same core thread.
  for (auto until = clock::now() + 2s; clock::now() < until;) {
    {
      std::lock_guard lk(mu);
      if (calls > 0) break;
    }
    std::this_thread::sleep_for(2ms);
  }
  std::lock_guard lk(mu);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(reason, LossReason::store_reported);
  EXPECT_FALSE(l.held());
  EXPECT_EQ(l.release().status, ReleaseStatus::not_held);
}

TEST_P(Conformance, LossSignalFiresWhenValidityEndsWithoutRenewal) {
  Lease l = store_.acquire({}, key(), {.ttl = short_ttl_});
  auto lost = l.lost_token();
  auto until = clock::now() + short_ttl_ * 2 + 1s;
  while (!lost.stop_requested() && clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(lost.stop_requested());
  EXPECT_FALSE(l.held());
}

TEST_P(Conformance, ReleaseStopsRenewalSynchronously) {
  Lease l = store_.acquire(
      {}, key(),
      {.ttl = short_ttl_, .auto_renew = true, .renew_interval = std::chrono::milliseconds(5)});
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  auto after = store_.metrics().renewals;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_.metrics().renewals, after);
  EXPECT_FALSE(store_.is_locked({}, key()));
}

TEST_P(Conformance, WithLockReleasesOnException) {
  LockService svc(store_, {.ttl = 10s});
  EXPECT_THROW(svc.with_lock({}, key(),
                             [&] {
                               EXPECT_TRUE(svc.is_locked({}, key()));
                               throw std::runtime_error("boom");
                             }),
               std::runtime_error);
  EXPECT_FALSE(svc.is_locked({}, key()));
  int r = svc.with_lock({}, key(), [](std::stop_token t) { return t.stop_requested() ? 0 : 42; });
  EXPECT_EQ(r, 42);
  EXPECT_FALSE(svc.is_locked({}, key()));
}

TEST_P(Conformance, TryWithLockRunsOnlyWhenFree) {
  LockService svc(store_);
  Lease held = another().acquire({}, key());
  bool ran = false;
  EXPECT_FALSE(svc.try_with_lock({}, key(), [&] { ran = true; }));
  EXPECT_FALSE(ran);
  held.release();
  EXPECT_TRUE(svc.try_with_lock({}, key(), [&](const Lease& l) {
    ran = true;
    EXPECT_TRUE(l.held());
    svc.renew({}, key(), 20s);  // The key counts as held by the service inside.
  }));
  EXPECT_TRUE(ran);
}

TEST_P(Conformance, LockInfoAndIsLocked) {
  EXPECT_FALSE(store_.is_locked({}, key()));
  auto free_info = store_.inspect({}, key());
  EXPECT_FALSE(free_info.held);
  Lease l = store_.acquire({}, key(), {.ttl = 20s, .metadata = "nightly job"});
  auto info = another().inspect({}, key());
  EXPECT_TRUE(info.held);
  EXPECT_EQ(info.key, key());
  EXPECT_EQ(info.fencing_token, l.fencing_token());
  EXPECT_GT(info.ttl_remaining, 15s);
  EXPECT_LE(info.ttl_remaining, 20s);
  EXPECT_EQ(info.owner.text, "nightly job");
  EXPECT_EQ(info.owner.pid, ::getpid());
  EXPECT_FALSE(info.owner.host.empty());
  EXPECT_TRUE(free_info.holders.empty());
  ASSERT_EQ(info.holders.size(), 1u);
  EXPECT_EQ(info.holders[0].mode, LockMode::exclusive());
  EXPECT_EQ(info.holders[0].fencing_token, l.fencing_token());
  EXPECT_EQ(info.holders[0].owner.text, "nightly job");
  EXPECT_EQ(l.mode(), LockMode::exclusive());
  auto listed = store_.list({}, prefix_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].key, key());
  ASSERT_EQ(listed[0].holders.size(), 1u);
  EXPECT_EQ(listed[0].holders[0].fencing_token, l.fencing_token());
}

TEST_P(Conformance, LockInfoCountsWaitersWhereTheStoreRecordsThem) {
  Lease held = store_.acquire({}, key(), {.ttl = 20s});
  auto before = store_.inspect({}, key());
  Store other = another();
  std::thread waiter([&] {
    try {
      other.acquire(Context::with_timeout(20s), key(), {.ttl = 20s});
    } catch (const Error&) {
    }
  });
  // A store that records waiters (a fair queue, waiter keys) counts this one; others say
  // nothing rather than a wrong number.
  std::optional<std::uint64_t> seen;
  for (auto until = clock::now() + 10s; clock::now() < until;) {
    seen = store_.inspect({}, key()).waiters;
    if (!seen || *seen == 1) break;
    std::this_thread::sleep_for(20ms);
  }
  if (before.waiters) {
    EXPECT_EQ(*before.waiters, 0u);
    EXPECT_EQ(seen, 1u);
  } else {
    EXPECT_FALSE(seen.has_value());
  }
  held.release();
  waiter.join();
  other.close();
}

TEST_P(Conformance, AModeTheStoreLacksIsRefusedAsUnsupported) {
  for (auto mode : {LockMode::shared(), LockMode::permits(1, 3)}) {
    if (caps_.supports(mode.kind)) continue;
    try {
      store_.acquire({}, key(), {.mode = mode});
      ADD_FAILURE() << "acquired a " << to_string(mode.kind) << " lock";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), errc::unsupported) << e.what();
      EXPECT_EQ(e.store(), std::string(store_.scheme()));
    }
  }
  EXPECT_FALSE(store_.is_locked({}, key()));
}

TEST_P(Conformance, ReleaseAfterExpiryReportsNotHeld) {
  {
    Lease l = store_.acquire({}, key(), {.ttl = short_ttl_});
    std::this_thread::sleep_for(short_ttl_ + 300ms);
    EXPECT_FALSE(l.held());
    auto r = l.release();
    EXPECT_EQ(r.status, ReleaseStatus::not_held);
    EXPECT_EQ(l.release().status, ReleaseStatus::already_released);
  }
  {
    Lease l = store_.acquire({}, key(), {.ttl = short_ttl_});
    std::this_thread::sleep_for(short_ttl_ + 300ms);
  }  // Destructor after expiry: no throw.
  SUCCEED();
}

TEST_P(Conformance, BadInputsGiveTypedErrors) {
  auto expect = [](auto&& fn, errc code) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
    }
  };
  expect([&] { store_.acquire({}, ""); }, errc::invalid_argument);
  expect([&] { store_.acquire({}, std::string(caps_.max_key_bytes + 1, 'x')); },
         errc::invalid_argument);
  if (!caps_.binary_keys) {
    expect([&] { store_.acquire({}, std::string("a\0b", 3)); }, errc::invalid_argument);
    expect([&] { store_.acquire({}, "a\nb"); }, errc::invalid_argument);
  }
  expect([&] { store_.acquire({}, key(), {.ttl = 0ms}); }, errc::invalid_argument);
  expect([&] { store_.acquire({}, key(), {.ttl = -5s}); }, errc::invalid_argument);
  expect([&] { store_.acquire({}, key(), {.ttl = kMaxTtl + 1ms}); }, errc::invalid_argument);
  expect([&] { store_.acquire({}, key(), {.wait = WaitPolicy::up_to(-1s)}); },
         errc::invalid_argument);
  expect([&] { store_.acquire({}, key(), {.retry = {.delay = 0ms}}); }, errc::invalid_argument);
  expect([&] { store_.acquire({}, key(), {.ttl = 1s, .renew_interval = 2s}); },
         errc::invalid_argument);
  EXPECT_FALSE(store_.is_locked({}, key()));  // Nothing was acquired by the bad calls.
  store_.close();
  expect([&] { store_.acquire({}, key()); }, errc::closed);
}

TEST_P(Conformance, CloseReleasesEverything) {
  Store s = another();
  ASSERT_TRUE(s.try_lock({}, key("a")));
  Lease l = s.acquire({}, key("b"));
  s.close();
  EXPECT_FALSE(store_.is_locked({}, key("a")));
  EXPECT_FALSE(store_.is_locked({}, key("b")));
  EXPECT_FALSE(l.lost());
  EXPECT_EQ(l.release().status, ReleaseStatus::already_released);
}

TEST_P(Conformance, MutexWorksWithStandardLocks) {
  static_assert(std::is_same_v<decltype(std::declval<Mutex&>().try_lock()), bool>);
  Mutex a(store_, key("a"), {.ttl = 10s});
  Mutex b(another(), key("b"), {.ttl = 10s});
  {
    std::unique_lock lk(a);
    EXPECT_TRUE(store_.is_locked({}, key("a")));
    EXPECT_GT(a.fencing_token(), 0u);
    Mutex a2(another(), key("a"));
    EXPECT_FALSE(a2.try_lock());
    EXPECT_FALSE(a2.try_lock_for(100ms));
  }
  EXPECT_FALSE(store_.is_locked({}, key("a")));
  {
    std::scoped_lock lk(a, b);
    EXPECT_TRUE(store_.is_locked({}, key("a")));
    EXPECT_TRUE(store_.is_locked({}, key("b")));
  }
  {
    std::unique_lock la(a, std::defer_lock);
    std::unique_lock lb(b, std::defer_lock);
    std::lock(la, lb);
    EXPECT_TRUE(la.owns_lock() && lb.owns_lock());
  }
  EXPECT_FALSE(store_.is_locked({}, key("b")));
}

TEST_P(Conformance, ManagerRoutesByName) {
  LockManager m;
  m.register_service("primary", std::make_shared<LockService>(store_));
  m.register_service("secondary", std::make_shared<LockService>(another()));
  EXPECT_THROW(m.register_service("primary", std::make_shared<LockService>(store_)), Error);
  bool ran = false;
  m.with_lock("secondary", {}, key(), [&] {
    ran = true;
    EXPECT_TRUE(m.is_locked("primary", {}, key()));
    EXPECT_TRUE(m.lock_info("secondary", {}, key()).held);
    m.renew("secondary", {}, key(), 15s);
  });
  EXPECT_TRUE(ran);
  try {
    m.is_locked("nope", {}, key());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::not_found);
  }
  m.close();
  EXPECT_THROW(m.service("primary"), Error);
}

TEST_P(Conformance, ServiceAutoRenewUntilStopped) {
  LockService svc(store_, {.ttl = short_ttl_});
  ASSERT_TRUE(svc.try_lock({}, key()));
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(short_ttl_ * 3);
    stop.request_stop();
  });
  auto end = svc.auto_renew({}, key(), short_ttl_ / 4, stop.get_token());
  stopper.join();
  EXPECT_EQ(end, AutoRenewEnd::stopped);
  EXPECT_TRUE(svc.is_locked({}, key()));
  svc.unlock({}, key());
}

TEST_P(Conformance, MetricsCountAttempts) {
  Lease l = store_.acquire({}, key());
  l.release();
  auto m = store_.metrics();
  EXPECT_GE(m.acquire_attempts, 1u);
  EXPECT_EQ(m.acquisitions, 1u);
  EXPECT_EQ(m.releases, 1u);
  EXPECT_EQ(m.held, 0u);
  EXPECT_NE(to_prometheus(m, std::string(store_.scheme())).find("dlock_acquisitions_total"),
            std::string::npos);
}

}  // namespace
}  // namespace dlock::test
