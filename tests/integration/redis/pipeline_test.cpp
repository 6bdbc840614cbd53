// The I/O-free protocol logic of the Redis client: RESP formatting and parsing, batching of
// queued requests, FIFO reply matching, push routing, failure of everything on a drop.
#include "redis/pipeline.hpp"

#include <gtest/gtest.h>

#include "redis/cluster.hpp"
#include "redis/resp.hpp"

namespace dlock::detail::redis {
namespace {

TEST(Resp, FormatsBinarySafeCommands) {
  EXPECT_EQ(format_command({"GET", "k"}), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  std::string binary("a\0\r\nb", 5);
  EXPECT_EQ(format_command({"SET", binary}),
            std::string("*2\r\n$3\r\nSET\r\n$5\r\na\0\r\nb\r\n", 24));
}

TEST(Resp, ParsesAllTypesIncrementally) {
  RespParser p;
  const std::string wire = "+OK\r\n-ERR bad\r\n:42\r\n$-1\r\n$3\r\nabc\r\n*2\r\n:1\r\n$1\r\nx\r\n";
  for (char c : wire) p.feed(&c, 1);  // One byte at a time: replies split anywhere.
  auto ok = p.next();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->type, RespValue::Type::status);
  EXPECT_EQ(ok->str, "OK");
  auto err = p.next();
  EXPECT_TRUE(err->is_error());
  EXPECT_EQ(err->str, "ERR bad");
  EXPECT_EQ(p.next()->integer, 42);
  EXPECT_TRUE(p.next()->is_nil());
  EXPECT_EQ(p.next()->str, "abc");
  auto arr = p.next();
  ASSERT_EQ(arr->elements.size(), 2u);
  EXPECT_EQ(arr->elements[0].integer, 1);
  EXPECT_EQ(arr->elements[1].str, "x");
  EXPECT_FALSE(p.next());
}

TEST(Resp, RejectsGarbage) {
  RespParser p;
  p.feed("?what\r\n", 7);
  EXPECT_THROW(p.next(), std::runtime_error);
}

// Found by fuzz/resp_fuzzer.cpp: a few bytes claiming a huge array made hiredis allocate the
// whole element table (3 GB here) before any element arrived.
TEST(Resp, RejectsArraysLongerThanAnyReplyBeforeAllocatingThem) {
  RespParser huge;
  huge.feed("*388888888\r\n", 13);
  EXPECT_THROW(huge.next(), std::runtime_error);
  RespParser siblings;  // The bound is per reply, not per array.
  const std::string two = "*2\r\n*1000000\r\n*1000000\r\n";
  siblings.feed(two.data(), two.size());
  EXPECT_THROW(siblings.next(), std::runtime_error);
  RespParser fine;  // Within the bound, and reset after each reply.
  for (int i = 0; i < 3; ++i) {
    const std::string big = "*1000000\r\n";
    fine.feed(big.data(), big.size());
    EXPECT_FALSE(fine.next());  // Needs its elements first.
    std::string elements;
    for (int e = 0; e < 1000000; ++e) elements += ":1\r\n";
    fine.feed(elements.data(), elements.size());
    auto v = fine.next();
    ASSERT_TRUE(v);
    EXPECT_EQ(v->elements.size(), 1000000u);
  }
}

struct Recorder {
  std::vector<std::string> got;
  ReplyHandler handler(std::string tag) {
    return [this, tag](Outcome&& o) {
      got.push_back(tag + "=" + (o.ok() ? o->str : "fail:" + o.failure().detail));
    };
  }
};

TEST(Pipeline, BatchesQueuedRequestsIntoOneWrite) {
  Pipeline p;
  Recorder r;
  p.enqueue(format_command({"GET", "a"}), r.handler("a"));
  p.enqueue(format_command({"GET", "b"}), r.handler("b"));
  EXPECT_TRUE(p.has_unwritten());
  auto batch = p.take_batch();
  EXPECT_EQ(batch, format_command({"GET", "a"}) + format_command({"GET", "b"}));
  EXPECT_FALSE(p.has_unwritten());
  EXPECT_EQ(p.in_flight(), 2u);
  // Requests queued while that write is in flight go into the next batch.
  p.enqueue(format_command({"GET", "c"}), r.handler("c"));
  EXPECT_EQ(p.take_batch(), format_command({"GET", "c"}));
  EXPECT_EQ(p.in_flight(), 3u);
}

TEST(Pipeline, MatchesRepliesInOrderAcrossPartialReads) {
  Pipeline p;
  Recorder r;
  for (auto t : {"a", "b", "c"}) p.enqueue(format_command({"GET", t}), r.handler(t));
  p.take_batch();
  const std::string replies = "$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n";
  ASSERT_TRUE(p.feed(replies.data(), 5));
  EXPECT_TRUE(r.got.empty());
  ASSERT_TRUE(p.feed(replies.data() + 5, replies.size() - 5));
  EXPECT_EQ(r.got, (std::vector<std::string>{"a=1", "b=2", "c=3"}));
  EXPECT_EQ(p.in_flight(), 0u);
}

TEST(Pipeline, LimitsTheBatchAndWithdrawsAGivenUpCallersUnwrittenRequests) {
  Pipeline p;
  Recorder r;
  p.enqueue(format_command({"GET", "a"}), r.handler("a"), 1);
  p.enqueue(format_command({"GET", "b"}), r.handler("b"), 2);
  p.enqueue(format_command({"GET", "c"}), r.handler("c"), 1);
  EXPECT_EQ(p.take_batch(Pipeline::clock::now(), 1), format_command({"GET", "a"}));
  // Caller 1 gave up: its unwritten request must not run; its written one stays in flight.
  p.withdraw(1);
  EXPECT_EQ(p.take_batch(), format_command({"GET", "b"}));
  EXPECT_FALSE(p.has_unwritten());
  const std::string replies = "+A\r\n+B\r\n";
  ASSERT_TRUE(p.feed(replies.data(), replies.size()));
  EXPECT_EQ(r.got, (std::vector<std::string>{"a=A", "b=B"}));
}

TEST(Pipeline, DeliversRepliesParsedElsewhere) {
  Pipeline p;
  Recorder r;
  p.enqueue(format_command({"PING"}), r.handler("p"));
  p.take_batch();
  RespValue pong;
  pong.type = RespValue::Type::status;
  pong.str = "PONG";
  EXPECT_TRUE(p.deliver(RespValue(pong)));
  EXPECT_EQ(r.got, std::vector<std::string>{"p=PONG"});
  EXPECT_FALSE(p.deliver(std::move(pong)));  // Nobody asked.
}

TEST(Pipeline, RoutesPushMessagesAside) {
  std::vector<std::string> pushed;
  Pipeline p(
      [](const RespValue& v) { return !v.elements.empty() && v.elements[0].str == "message"; },
      [&](RespValue&& v) { pushed.push_back(v.elements[1].str); });
  Recorder r;
  p.enqueue(format_command({"SUBSCRIBE", "ch"}), r.handler("sub"));
  p.take_batch();
  const std::string wire =
      "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n";
  ASSERT_TRUE(p.feed(wire.data(), wire.size()));
  ASSERT_EQ(r.got.size(), 1u);
  EXPECT_EQ(pushed, std::vector<std::string>{"ch"});
}

TEST(Pipeline, FailAllFailsQueuedAndInFlightOnce) {
  Pipeline p;
  Recorder r;
  p.enqueue(format_command({"GET", "a"}), r.handler("a"));
  p.take_batch();
  p.enqueue(format_command({"GET", "b"}), r.handler("b"));
  p.fail_all(Failure{errc::unavailable, "gone"});
  EXPECT_EQ(r.got, (std::vector<std::string>{"a=fail:gone", "b=fail:gone"}));
  EXPECT_EQ(p.in_flight(), 0u);
  EXPECT_FALSE(p.has_unwritten());
  // The parser was reset: a fresh connection starts clean even after a half-read reply.
  p.enqueue(format_command({"GET", "c"}), r.handler("c"));
  p.take_batch();
  ASSERT_TRUE(p.feed("+c\r\n", 4));
  EXPECT_EQ(r.got.back(), "c=c");
}

TEST(Pipeline, UnexpectedReplyOrGarbageIsReported) {
  Pipeline p;
  EXPECT_FALSE(p.feed("+OK\r\n", 5));  // Nobody asked.
  Pipeline q;
  Recorder r;
  q.enqueue(format_command({"PING"}), r.handler("p"));
  q.take_batch();
  EXPECT_FALSE(q.feed("!!\r\n", 4));
}

TEST(Pipeline, TracksTheOldestRequestForCommandTimeouts) {
  Pipeline p;
  Recorder r;
  EXPECT_FALSE(p.oldest_sent());
  auto t0 = Pipeline::clock::now();
  p.enqueue(format_command({"PING"}), r.handler("p"));
  p.take_batch(t0);
  EXPECT_EQ(*p.oldest_sent(), t0);
}

}  // namespace
}  // namespace dlock::detail::redis

namespace dlock::detail::redis {
namespace {

TEST(ClusterSlots, MatchTheRedisCluster) {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));  // Empty tag: the whole key.
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  // A lock key and its companions share a slot.
  EXPECT_EQ(key_slot("lock:job"), key_slot("{lock:job}:fence"));
  EXPECT_EQ(key_slot("lock:job"), key_slot("{lock:job}:wake:abc"));
}

}  // namespace
}  // namespace dlock::detail::redis
