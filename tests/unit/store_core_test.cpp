// Unit tests of core over a fake store on a manual clock: the waiting loop (deadline,
// cancellation, backoff bounds, late grants), leases (renewal, loss, release), the renewal
// scheduler's batches and the local line. No test sleeps: time moves by hand.
#include "core/store_core.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/access.hpp"
#include "core/local_queue.hpp"
#include "core/renewal_scheduler.hpp"
#include "dlock/dlock.hpp"
#include "dlock/log.hpp"
#include "unit/fake_backend.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() : backend_(std::make_shared<FakeBackend>(clock_)), scheduler_(clock_, /*workers=*/0) {}
  ~CoreTest() override { store_.close(); }

  // Opens the store once the test has set the fake's capabilities.
  Store& store() {
    if (store_.closed()) store_ = detail::make_store(backend_, "fake://", clock_, scheduler_);
    return store_;
  }
  Context within(Clock::duration d, std::stop_token stop = {}) {
    return Context::with_deadline(clock_.now() + d, std::move(stop));
  }

  detail::ManualClock clock_;
  std::shared_ptr<FakeBackend> backend_;
  detail::RenewalScheduler scheduler_;
  Store store_;
};

// ---- the waiting loop ----

TEST_F(CoreTest, WaitEndsAtTheDeadlineWithTimeoutAndAbandonsOnce) {
  backend_->hold_foreign("k");
  const auto start = clock_.now();
  try {
    store().acquire(within(1s), "k");
    FAIL() << "acquired a held lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::timeout) << e.what();
  }
  EXPECT_GE(clock_.now() - start, 1s);  // It waited the whole deadline (on the manual clock)...
  ASSERT_FALSE(backend_->waits.empty());
  EXPECT_LE(backend_->waits.back(), start + 1s);  // ...and never past it.
  EXPECT_EQ(backend_->abandons, 1);
  EXPECT_EQ(store().metrics().acquire_failures, 1u);
}

TEST_F(CoreTest, WaitsFollowTheBackoffAndItsCap) {
  backend_->hold_foreign("k");
  auto opts = LockOptions{.retry = {.delay = 20ms, .max_delay = 100ms, .jitter = 0}};
  opts.retry.max_attempts = 6;
  EXPECT_THROW(store().acquire(within(1h), "k", opts), Error);
  // After attempt n the wait is min(20 ms * 2^(n-1), 100 ms): 20, 40, 80, 100, 100.
  const std::vector<milliseconds> want{20ms, 40ms, 80ms, 100ms, 100ms};
  ASSERT_EQ(backend_->waits.size(), want.size());
  ASSERT_EQ(backend_->attempts, 6);
  auto from = backend_->waits.front() - want.front();
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(backend_->waits[i] - from, want[i]) << "wait " << i;
    from = backend_->waits[i];
  }
}

TEST_F(CoreTest, TheHoldersRemainingTtlBoundsEachWait) {
  backend_->hold_foreign("k");
  backend_->holder_ttl = 5ms;
  auto opts = LockOptions{.retry = {.max_attempts = 3, .delay = 500ms, .jitter = 0}};
  auto before = clock_.now();
  EXPECT_THROW(store().acquire(within(1h), "k", opts), Error);
  ASSERT_EQ(backend_->waits.size(), 2u);
  EXPECT_EQ(backend_->waits[0] - before, 6ms);  // TTL + 1 ms, not the 500 ms backoff.
}

TEST_F(CoreTest, CancellationEndsTheWaitWithCancelled) {
  backend_->hold_foreign("k");
  std::stop_source stop;
  backend_->on_wait = [&](Clock::time_point) {
    if (backend_->waits.size() == 3) stop.request_stop();
  };
  try {
    store().acquire(within(1h, stop.get_token()), "k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::cancelled) << e.what();
  }
  EXPECT_EQ(backend_->attempts, 3);
  EXPECT_EQ(backend_->abandons, 1);
}

TEST_F(CoreTest, AGrantThatArrivesAfterItsValidityIsRefusedAndReleased) {
  backend_->on_attempt = [&](int) { clock_.advance(10s); };  // The reply takes a whole TTL.
  try {
    store().acquire(within(1h), "k", {.ttl = 10s});
    FAIL() << "a grant past its validity was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::timeout) << e.what();
  }
  EXPECT_EQ(backend_->releases, 1);  // Undone at once, not left to expire.
  EXPECT_EQ(backend_->abandons, 1);
  EXPECT_EQ(store().metrics().held, 0u);
}

TEST_F(CoreTest, TryAcquireMakesOneAttemptAndNeverWaits) {
  backend_->hold_foreign("k");
  EXPECT_FALSE(store().try_acquire({}, "k").has_value());
  EXPECT_EQ(backend_->attempts, 1);
  EXPECT_TRUE(backend_->waits.empty());
}

TEST_F(CoreTest, AModeTheStoreLacksIsRefusedAsUnsupported) {
  try {
    store().acquire({}, "k", {.mode = LockMode::shared()});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unsupported);
    EXPECT_NE(std::string(e.what()).find("shared"), std::string::npos) << e.what();
    EXPECT_EQ(e.store(), "fake");
  }
  try {
    store().acquire({}, "k", {.mode = LockMode::permits(2, 5)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::unsupported);
  }
  EXPECT_EQ(backend_->attempts, 0);  // Refused in core, before any request.
}

TEST_F(CoreTest, PermitCountsOutOfRangeAreInvalid) {
  backend_->caps.permits_mode = true;
  EXPECT_THROW(store().acquire({}, "k", {.mode = LockMode::permits(0, 5)}), Error);
  EXPECT_THROW(store().acquire({}, "k", {.mode = LockMode::permits(6, 5)}), Error);
  EXPECT_EQ(backend_->attempts, 0);
}

TEST_F(CoreTest, AClosedStoreRefusesEveryCallWithoutAskingTheStore) {
  Lease l = store().acquire({}, "held");
  store().close();
  EXPECT_EQ(backend_->closes, 1);
  EXPECT_EQ(backend_->releases, 1);  // close() released the lease first.
  const int attempts = backend_->attempts;
  for (auto call : std::vector<std::function<void()>>{
           [&] { store_.acquire({}, "k"); }, [&] { store_.inspect({}, "k"); },
           [&] { store_.force_release({}, "k"); }, [&] { store_.list({}); },
           [&] { l.renew(Context{}, 10s); }}) {
    try {
      call();
      ADD_FAILURE() << "a call on a closed store went through";
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == errc::closed || e.code() == errc::not_held) << e.what();
    }
  }
  EXPECT_EQ(backend_->attempts, attempts);
  EXPECT_EQ(backend_->inspects, 0);
  store_.close();  // Idempotent.
  EXPECT_EQ(backend_->closes, 1);
}

TEST_F(CoreTest, InspectionListsEveryHolderAndTheWaiters) {
  backend_->inspection.holders = {
      {LockMode::shared(), 7, 900ms, R"({"host":"h1","pid":11,"t":5,"text":"a"})"},
      {LockMode::shared(), 9, 400ms, ""}};
  backend_->inspection.waiters = 3;
  LockInfo i = store().inspect({}, "k");
  EXPECT_TRUE(i.held);
  EXPECT_EQ(i.key, "k");
  EXPECT_EQ(i.fencing_token, 7u);  // The summary is the first holder.
  EXPECT_EQ(i.owner.pid, 11);
  ASSERT_EQ(i.holders.size(), 2u);
  EXPECT_EQ(i.holders[1].fencing_token, 9u);
  EXPECT_EQ(i.holders[1].ttl_remaining, 400ms);
  EXPECT_TRUE(i.holders[1].owner.foreign());
  EXPECT_EQ(i.holders[0].mode, LockMode::shared());
  EXPECT_EQ(i.waiters, 3u);
}

// ---- leases and the renewal scheduler ----

TEST_F(CoreTest, ReleaseReachesTheStoreAtMostOnce) {
  Lease l = store().acquire({}, "k");
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
  EXPECT_EQ(l.release().status, ReleaseStatus::already_released);
  l = Lease();  // The destructor does not release again either.
  EXPECT_EQ(backend_->releases, 1);
}

TEST_F(CoreTest, WaitAndHoldTimesGoIntoTheirHistograms) {
  Lease first = store().acquire({}, "k");  // No wait: the first bucket (<= 1 ms).
  clock_.advance(2s);
  backend_->on_wait = [&](Clock::time_point) { first.release(); };  // Held 2 s.
  Lease second = store().acquire({}, "k");                          // Waits one backoff.
  clock_.advance(40s);
  second.release();  // Held 40 s.
  const Metrics m = store().metrics();
  const auto& bounds = Histogram::kBounds;
  auto at_or_under = [&](const Histogram& h, double seconds) {
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (bounds[i] == seconds) return h.cumulative[i];
    }
    ADD_FAILURE() << "no bound " << seconds;
    return std::uint64_t{0};
  };
  EXPECT_EQ(m.hold_time.count, 2u);
  EXPECT_EQ(at_or_under(m.hold_time, 1), 0u);
  EXPECT_EQ(at_or_under(m.hold_time, 5), 1u);
  EXPECT_EQ(at_or_under(m.hold_time, 30), 1u);
  EXPECT_EQ(at_or_under(m.hold_time, 300), 2u);
  EXPECT_EQ(m.hold_time.sum_us, 42'000'000u);
  EXPECT_EQ(m.wait_time.count, 2u);
  EXPECT_EQ(at_or_under(m.wait_time, 0.001), 1u);
  EXPECT_GT(m.wait_time.sum_us, 0u);
  EXPECT_EQ(m.wait_time.sum_us, m.wait_time_us);

  const std::string text = to_prometheus(m, {{"store", "fake"}, {"service", "a \"b\""}});
  EXPECT_NE(text.find("# TYPE dlock_hold_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find("dlock_hold_seconds_bucket{service=\"a \\\"b\\\"\",store=\"fake\",le=\"5\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "dlock_hold_seconds_bucket{service=\"a \\\"b\\\"\",store=\"fake\",le=\"+Inf\"} 2\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("dlock_hold_seconds_sum{service=\"a \\\"b\\\"\",store=\"fake\"} 42\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dlock_wait_seconds_count{service=\"a \\\"b\\\"\",store=\"fake\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(to_prometheus(m, "fake").find("dlock_acquisitions_total{store=\"fake\"} 2\n"),
            std::string::npos);
}

TEST_F(CoreTest, AutoRenewalRenewsEachIntervalWithoutSleeping) {
  Lease l = store().acquire({}, "k", {.ttl = 3s, .auto_renew = true});
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);  // The interval: TTL / 3.
    scheduler_.run_due();
  }
  EXPECT_EQ(backend_->extends, 5);
  EXPECT_TRUE(l.held());
  EXPECT_EQ(l.valid_until(), clock_.now() + 3s - detail::drift_margin(3s));
}

TEST_F(CoreTest, RenewalsDueTogetherGoToTheStoreAsOneBatch) {
  backend_->caps.extends_in_batches = true;
  std::vector<Lease> leases;
  for (int i = 0; i < 10; ++i) {
    leases.push_back(store().acquire({}, "k" + std::to_string(i), {.ttl = 3s, .auto_renew = true}));
  }
  clock_.advance(1s);
  scheduler_.run_due();
  ASSERT_EQ(backend_->batch_sizes, std::vector<std::size_t>{10});
  EXPECT_EQ(store().metrics().renewals, 10u);
}

TEST_F(CoreTest, BatchesAreSplitAtTheirLargestSize) {
  backend_->caps.extends_in_batches = true;
  const std::size_t n = detail::RenewalScheduler::kMaxBatch + 4;
  std::vector<Lease> leases;
  for (std::size_t i = 0; i < n; ++i) {
    leases.push_back(store().acquire({}, "k" + std::to_string(i), {.ttl = 3s, .auto_renew = true}));
  }
  clock_.advance(1s);
  scheduler_.run_due();
  EXPECT_EQ(backend_->batch_sizes,
            (std::vector<std::size_t>{detail::RenewalScheduler::kMaxBatch, 4}));
}

TEST_F(CoreTest, ARejectedRenewalFiresTheLossOnce) {
  backend_->on_extend = [](const FakeBackend::Grant&) { return GrantResult::not_held(); };
  std::vector<LossInfo> losses;
  Lease l = store().acquire(
      {}, "k", {.ttl = 3s, .auto_renew = true, .on_lost = [&](auto& i) { losses.push_back(i); }});
  auto lost = l.lost_token();
  clock_.advance(1s);
  scheduler_.run_due();
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].reason, LossReason::rejected);
  EXPECT_EQ(losses[0].fencing_token, l.fencing_token());
  EXPECT_TRUE(lost.stop_requested());
  EXPECT_FALSE(l.held());
  clock_.advance(10s);
  scheduler_.run_due();
  EXPECT_EQ(losses.size(), 1u);
  EXPECT_EQ(store().metrics().losses, 1u);
}

TEST_F(CoreTest, FailingRenewalsRetryThenExpireAtTheValidity) {
  backend_->on_extend = [](const FakeBackend::Grant&) {
    return GrantResult::failed(make_error_code(errc::unavailable));
  };
  LossInfo loss;
  Lease l = store().acquire({}, "k",
                            {.ttl = 3s, .auto_renew = true, .on_lost = [&](auto& i) { loss = i; }});
  const auto valid_until = l.valid_until();
  while (clock_.now() < valid_until + 1ms) {
    clock_.advance(50ms);
    scheduler_.run_due();
  }
  EXPECT_GT(backend_->extends, 3);  // Retried (every interval / 4), not given up at once.
  EXPECT_TRUE(l.lost());
  EXPECT_EQ(loss.reason, LossReason::expired);
  EXPECT_EQ(loss.error, errc::unavailable);  // The last renewal error is passed on.
}

TEST_F(CoreTest, AFailedRenewalPutsTheGrantAtRiskAndASuccessfulOneRecoversIt) {
  bool failing = true;
  backend_->on_extend = [&](const FakeBackend::Grant&) {
    return failing ? GrantResult::failed(make_error_code(errc::unavailable)) : GrantResult::held();
  };
  std::vector<RiskInfo> risks, recoveries;
  Lease l = store().acquire({}, "k",
                            {.ttl = 3s,
                             .auto_renew = true,
                             .on_at_risk = [&](const RiskInfo& i) { risks.push_back(i); },
                             .on_recovered = [&](const RiskInfo& i) { recoveries.push_back(i); }});
  auto token = l.at_risk_token();
  EXPECT_FALSE(l.at_risk());
  clock_.advance(1s);
  scheduler_.run_due();
  ASSERT_EQ(risks.size(), 1u);
  EXPECT_EQ(risks[0].error, errc::unavailable);
  EXPECT_EQ(risks[0].valid_until, l.valid_until());
  EXPECT_TRUE(l.at_risk());
  EXPECT_TRUE(token.stop_requested());
  EXPECT_TRUE(l.held());  // At risk is not lost: the validity remains.
  clock_.advance(250ms);  // The retry (interval / 4) fails again: still one episode.
  scheduler_.run_due();
  EXPECT_EQ(risks.size(), 1u);
  failing = false;
  clock_.advance(250ms);
  scheduler_.run_due();
  ASSERT_EQ(recoveries.size(), 1u);
  EXPECT_FALSE(l.at_risk());
  EXPECT_FALSE(l.at_risk_token().stop_requested());  // A fresh token for the next episode.
  EXPECT_FALSE(l.lost());
  EXPECT_EQ(store().metrics().at_risk, 1u);
  EXPECT_EQ(store().metrics().recoveries, 1u);
}

TEST_F(CoreTest, RenewalFailuresRisksAndRecoveriesAreLogged) {
  std::vector<std::pair<LogLevel, std::string>> records;  // The scheduler runs on this thread.
  std::vector<std::string> errors;
  set_log_sink(
      [&](const LogRecord& r) {
        records.emplace_back(r.level, std::string(r.message));
        if (!r.field("error").empty()) errors.emplace_back(r.field("error"));
      },
      LogLevel::info);
  bool failing = true;
  backend_->on_extend = [&](const FakeBackend::Grant&) {
    return failing ? GrantResult::failed(make_error_code(errc::unavailable)) : GrantResult::held();
  };
  Lease l = store().acquire({}, "k", {.ttl = 3s, .auto_renew = true});
  clock_.advance(1s);
  scheduler_.run_due();
  failing = false;
  clock_.advance(250ms);
  scheduler_.run_due();
  set_log_sink({});
  const std::vector<std::pair<LogLevel, std::string>> expected = {
      {LogLevel::warning, "renewal failed"},
      {LogLevel::warning, "at risk"},
      {LogLevel::info, "recovered"}};
  EXPECT_EQ(records, expected);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], make_error_code(errc::unavailable).message());
}

TEST_F(CoreTest, AStoreReportedInterruptionIsAtRiskUntilTheStoreReportsItBack) {
  int risks = 0, recoveries = 0;
  Lease l = store().acquire({}, "k",
                            {.on_at_risk = [&](const RiskInfo&) { ++risks; },
                             .on_recovered = [&](const RiskInfo&) { ++recoveries; }});
  backend_->live.back()->report_at_risk();
  scheduler_.run_due();
  EXPECT_TRUE(l.at_risk());
  EXPECT_EQ(risks, 1);
  backend_->live.back()->report_recovered();
  scheduler_.run_due();
  EXPECT_FALSE(l.at_risk());
  EXPECT_EQ(recoveries, 1);
}

TEST_F(CoreTest, ALossWhileAtRiskEndsTheRisk) {
  backend_->on_extend = [](const FakeBackend::Grant&) {
    return GrantResult::failed(make_error_code(errc::unavailable));
  };
  Lease l = store().acquire({}, "k", {.ttl = 3s, .auto_renew = true});
  clock_.advance(1s);
  scheduler_.run_due();
  auto token = l.at_risk_token();
  EXPECT_TRUE(token.stop_requested());
  for (int i = 0; i < 40 && !l.lost(); ++i) {
    clock_.advance(100ms);
    scheduler_.run_due();
  }
  EXPECT_TRUE(l.lost());
  EXPECT_FALSE(l.at_risk());                        // Lost, no longer "at risk".
  EXPECT_TRUE(l.at_risk_token().stop_requested());  // A token made now is stopped too.
}

TEST_F(CoreTest, WithoutAutoRenewalTheLossFiresWhenTheValidityEnds) {
  Lease l = store().acquire({}, "k", {.ttl = 2s});
  clock_.advance(1s);
  scheduler_.run_due();
  EXPECT_FALSE(l.lost());
  clock_.advance(1s);
  scheduler_.run_due();
  EXPECT_TRUE(l.lost());
  EXPECT_EQ(backend_->extends, 0);
}

TEST_F(CoreTest, AStoreReportedLossFiresOnTheSchedulersThread) {
  LossInfo loss;
  Lease l = store().acquire({}, "k", {.on_lost = [&](auto& i) { loss = i; }});
  backend_->live.back()->report_lost(make_error_code(errc::lock_lost));
  EXPECT_FALSE(l.lost());  // Not on the reporting thread...
  scheduler_.run_due();    // ...but on the scheduler's.
  EXPECT_TRUE(l.lost());
  EXPECT_EQ(loss.reason, LossReason::store_reported);
  EXPECT_EQ(loss.error, errc::lock_lost);
}

TEST_F(CoreTest, ALossReportedBeforeTheLeaseExistsIsNotMissed) {
  // The store learns of the loss while the winning attempt is still on its way to core.
  backend_->on_grant = [](FakeBackend::Grant& g) { g.report_lost(); };
  Lease l = store().acquire({}, "k");
  scheduler_.run_due();
  EXPECT_TRUE(l.lost());
}

TEST_F(CoreTest, AReleasedLeaseIgnoresLaterLossReports) {
  Lease l = store().acquire({}, "k");
  auto* grant = backend_->live.back();
  l.release();
  grant->report_lost();
  scheduler_.run_due();
  EXPECT_FALSE(l.lost());
  EXPECT_EQ(store().metrics().losses, 0u);
}

TEST_F(CoreTest, ReleaseWaitsForARenewalInFlight) {
  std::atomic<bool> in_extend{false}, go{false};
  backend_->on_extend = [&](const FakeBackend::Grant&) {
    in_extend = true;
    while (!go) std::this_thread::yield();
    return GrantResult::held();
  };
  Lease l = store().acquire({}, "k", {.ttl = 3s, .auto_renew = true});
  clock_.advance(1s);
  std::thread renewer([&] { scheduler_.run_due(); });
  while (!in_extend) std::this_thread::yield();
  std::atomic<bool> released{false};
  std::thread releaser([&] {
    l.release();
    released = true;
  });
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_FALSE(released.load());  // Held back by the renewal in flight.
  go = true;
  renewer.join();
  releaser.join();
  EXPECT_TRUE(released.load());
}

// ---- the local line ----

TEST(LocalQueue, WaitersOfOneKeyAreServedInArrivalOrder) {
  detail::LocalQueue q;
  auto first = std::make_unique<detail::LocalQueue::Turn>(q.enter("k", {}));
  std::vector<int> order;
  std::mutex order_mu;
  std::vector<std::thread> threads;
  for (int i = 1; i <= 3; ++i) {
    threads.emplace_back([&, i] {
      auto t = q.enter("k", {});
      std::lock_guard lk(order_mu);
      order.push_back(i);
    });
    while (q.size("k") != static_cast<std::size_t>(i + 1)) std::this_thread::yield();
  }
  EXPECT_TRUE(q.enter("other", {}));  // Another key has its own line.
  first.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(q.size("k"), 0u);
}

TEST(LocalQueue, AWaiterWhoseContextEndsLeavesTheLine) {
  detail::LocalQueue q;
  auto head = q.enter("k", {});
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(q.enter("k", Context::with_stop(stop.get_token())));
  EXPECT_FALSE(q.enter("k", Context::with_timeout(0s)));
  EXPECT_EQ(q.size("k"), 1u);
}

}  // namespace
}  // namespace dlock::test
