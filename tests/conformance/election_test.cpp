// The conformance suite, part four: watching a lock (Store::watch) and leader election
// (dlock::Election) on every store kind.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "conformance/fixture.hpp"

namespace dlock::test {
namespace {

// Records a watch's events on a thread of its own until stopped.
class Recorder {
 public:
  Recorder(Store store, std::string key, std::chrono::milliseconds poll = 50ms) {
    thread_ = std::thread([this, store, key, poll]() mutable {
      store.watch(
          Context::with_stop(stop_.get_token()), key,
          [this](const LockEvent& e) {
            std::lock_guard lk(mu_);
            events_.push_back(e);
            cv_.notify_all();
            return true;
          },
          poll);
    });
  }
  ~Recorder() {
    stop_.request_stop();
    thread_.join();
  }
  // Waits until `n` events arrived (or 10 s); returns them.
  std::vector<LockEvent> wait_for(std::size_t n) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return events_.size() >= n; });
    return events_;
  }

 private:
  std::stop_source stop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<LockEvent> events_;
  std::thread thread_;
};

TEST_P(Conformance, WatchReportsEveryChangeInOrder) {
  Recorder rec(another(), key());
  auto events = rec.wait_for(1);
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].kind, LockEvent::Kind::snapshot);
  EXPECT_FALSE(events[0].state.held);

  Lease a = store_.acquire({}, key(), {.ttl = 20s, .metadata = "first"});
  events = rec.wait_for(2);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].kind, LockEvent::Kind::acquired);
  EXPECT_EQ(events[1].holder.fencing_token, a.fencing_token());
  EXPECT_EQ(events[1].holder.owner.text, "first");
  a.release();
  events = rec.wait_for(3);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[2].kind, LockEvent::Kind::released);
  EXPECT_EQ(events[2].holder.fencing_token, a.fencing_token());
  EXPECT_FALSE(events[2].state.held);

  Lease b = store_.acquire({}, key(), {.ttl = short_ttl_});  // Not renewed: it expires.
  events = rec.wait_for(5);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events[3].kind, LockEvent::Kind::acquired);
  EXPECT_EQ(events[4].kind, LockEvent::Kind::expired);
  EXPECT_EQ(events[4].holder.fencing_token, b.fencing_token());
}

// A store with `Capabilities::watches` reports changes from its notifications: with a poll
// interval of an hour, every change still arrives (each wait_for gives up after 10 s).
TEST_P(Conformance, AWatchOnAStoreWithNotificationsDoesNotPoll) {
  if (!caps_.watches) GTEST_SKIP() << "this store's watch reads the lock every poll interval";
  Recorder rec(another(), key(), std::chrono::hours(1));
  auto events = rec.wait_for(1);
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(events[0].kind, LockEvent::Kind::snapshot);
  Lease a = store_.acquire({}, key(), {.ttl = 60s, .metadata = "notified"});
  events = rec.wait_for(2);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].kind, LockEvent::Kind::acquired);
  EXPECT_EQ(events[1].holder.owner.text, "notified");
  a.release();
  events = rec.wait_for(3);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[2].kind, LockEvent::Kind::released);
}

TEST_P(Conformance, ElectionHasOneLeaderAtATimeWithIncreasingTerms) {
  Election a_side(store_, key(), {.ttl = 10s});
  Election b_side(another(), key(), {.ttl = 10s});
  Leadership a = a_side.campaign({}, "a:1");
  EXPECT_TRUE(a.leading());
  auto seen = b_side.leader({});
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->value, "a:1");
  EXPECT_EQ(seen->term, a.term());

  std::atomic<bool> b_leads{false};
  Leadership b;
  std::thread standby([&] {
    b = b_side.campaign(Context::with_timeout(30s), "b:1");
    b_leads = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(b_leads.load());  // One leader at a time.
  if (caps_.proclaims) {
    a.proclaim({}, "a:2");
    EXPECT_EQ(a_side.leader({})->value, "a:2");
    EXPECT_EQ(a.value(), "a:2");
  }
  const auto a_term = a.term();
  EXPECT_EQ(a.resign().status, ReleaseStatus::released);
  standby.join();
  ASSERT_TRUE(b_leads.load());
  EXPECT_GT(b.term(), a_term);  // Terms strictly increase.
  EXPECT_EQ(a_side.leader({})->value, "b:1");
}

TEST_P(Conformance, ObserversSeeEveryChangeOfLeaderInOrder) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<LeaderInfo>> seen;
  std::stop_source stop;
  Election watcher(another(), key());
  std::thread observer([&] {
    watcher.observe(Context::with_stop(stop.get_token()), [&](const std::optional<LeaderInfo>& l) {
      std::lock_guard lk(mu);
      seen.push_back(l);
      cv.notify_all();
      return true;
    });
  });
  auto wait_for = [&](std::size_t n) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 10s, [&] { return seen.size() >= n; });
  };
  ASSERT_TRUE(wait_for(1));  // Nobody leads yet.
  Election e(store_, key(), {.ttl = 10s});
  {
    Leadership first = e.campaign({}, "one");
    ASSERT_TRUE(wait_for(2));
    if (caps_.proclaims) {
      first.proclaim({}, "one-b");
      ASSERT_TRUE(wait_for(3));
    }
  }  // Resigns.
  Leadership second = e.campaign({}, "two");
  {
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return seen.back() && seen.back()->value == "two"; }));
  }
  stop.request_stop();
  observer.join();
  std::lock_guard lk(mu);
  EXPECT_FALSE(seen[0].has_value());
  EXPECT_EQ(seen[1]->value, "one");
  std::size_t i = 2;
  if (caps_.proclaims) {
    EXPECT_EQ(seen[i++]->value, "one-b");
  }
  // The resignation shows as "nobody leads" unless the next leader came first.
  if (!seen[i].has_value()) ++i;
  ASSERT_LT(i, seen.size());
  EXPECT_EQ(seen[i]->value, "two");
  EXPECT_GT(seen[i]->term, seen[1]->term);
}

}  // namespace
}  // namespace dlock::test
