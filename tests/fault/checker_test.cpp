// The checker itself, on synthetic histories: it must catch each kind of violation.
#include "fault/checker.hpp"

#include <gtest/gtest.h>

namespace dlock::fault {
namespace {

using namespace std::chrono_literals;

Section sec(int w, std::uint64_t token, std::int64_t enter, std::int64_t exit,
            std::int64_t valid_end = -1, bool lost = false, const char* write = "accepted") {
  return Section{w, token, 0, enter, exit, valid_end < 0 ? exit : valid_end, lost, write};
}

TEST(Checker, CleanHistoryIsSafe) {
  auto r = check({sec(1, 1, 0, 10), sec(2, 2, 11, 20), sec(1, 3, 21, 30)}, 1s);
  EXPECT_TRUE(r.safe()) << r.summary();
  EXPECT_EQ(r.sections, 3u);
}

TEST(Checker, CatchesOverlapAndUnsignalledLoss) {
  auto r = check({sec(1, 1, 0, 20), sec(2, 2, 10, 30)}, 1s);
  EXPECT_EQ(r.overlaps, 1u);
  EXPECT_EQ(r.unsignalled_losses, 1u);
  EXPECT_FALSE(r.safe());
}

TEST(Checker, PausedHolderWhoseValidityEndedIsNotAnOverlap) {
  // Worker 1 was paused: validity ended at 8, it noticed (lost), its late write was rejected.
  auto r = check({sec(1, 1, 0, 50, 8, true, "rejected"), sec(2, 2, 10, 30)}, 1s);
  EXPECT_TRUE(r.safe()) << r.summary();
  EXPECT_EQ(r.stale_rejected, 1u);
}

TEST(Checker, CatchesStaleAcceptedWriteAndTokenOrder) {
  auto r = check({sec(1, 5, 0, 10), sec(2, 4, 11, 20)}, 1s);
  EXPECT_EQ(r.non_increasing_tokens, 1u);
  EXPECT_EQ(r.stale_accepted, 1u);
}

TEST(Checker, ARepeatedTokenIsAStaleWrite) {
  // Two sections with one token (a fence counter that went back in a failover): the second
  // write is stale even though its token is not lower.
  auto r = check({sec(1, 7, 0, 10), sec(2, 7, 11, 20)}, 1s);
  EXPECT_EQ(r.non_increasing_tokens, 1u);
  EXPECT_EQ(r.stale_accepted, 1u);
  EXPECT_FALSE(r.safe());
}

TEST(Checker, LossLatencyRunsFromTheGrantsEndToTheSignal) {
  // w1's lease ended at 8'000'000 and its signal fired 3 ms later; w2 was told 1 ms after w3
  // entered (before its own lease end); w3's signal came before its lease end: latency 0.
  auto a = sec(1, 1, 0, 50'000'000, 8'000'000, true, "rejected");
  a.lease_end_ns = 8'000'000;
  a.lost_ns = 11'000'000;
  auto b = sec(2, 2, 12'000'000, 40'000'000, 30'000'000, true, "skipped");
  b.lease_end_ns = 90'000'000;
  b.lost_ns = 31'000'000;
  auto c = sec(3, 3, 30'000'000, 60'000'000, 55'000'000, true, "skipped");
  c.lease_end_ns = 70'000'000;
  c.lost_ns = 55'000'000;
  auto r = check({a, b, c}, 1s);
  EXPECT_EQ(r.loss_signals, 3u);
  EXPECT_EQ(r.loss_latency_max_ns, 3'000'000);
  EXPECT_EQ(r.loss_latency_median_ns, 1'000'000);
}

TEST(Checker, CountsStarvation) {
  auto a = sec(1, 1, 0, 10);
  a.wait_ns = 5'000'000'000;
  auto r = check({a}, 1s);
  EXPECT_EQ(r.starved, 1u);
  EXPECT_TRUE(r.safe());
}

TEST(Checker, LogLinesRoundTrip) {
  auto s = sec(3, 42, 100, 200, 150, true, "skipped");
  auto back = parse_section(format_section(s));
  EXPECT_EQ(back.worker, 3);
  EXPECT_EQ(back.token, 42u);
  EXPECT_EQ(back.valid_end_ns, 150);
  EXPECT_TRUE(back.lost);
  EXPECT_EQ(back.write, "skipped");
}

}  // namespace
}  // namespace dlock::fault

namespace dlock::fault {
namespace {

TEST(Checker, SectionPausedBeforeItsEntryWasRecordedIsNotOrdered) {
  // Worker 1 got token 1, was paused before reading the clock, and recorded its entry at 40,
  // after worker 2 (token 2) had entered; its validity had ended at 5, and it noticed.
  auto r = check({sec(1, 1, 40, 50, 5, true, "skipped"), sec(2, 2, 10, 30)}, 1s);
  EXPECT_TRUE(r.safe()) << r.summary();
  auto unsignalled = check({sec(1, 1, 40, 50, 5, false, "skipped"), sec(2, 2, 10, 30)}, 1s);
  EXPECT_EQ(unsignalled.unsignalled_losses, 1u);
}

}  // namespace
}  // namespace dlock::fault
