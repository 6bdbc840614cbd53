// Unit tests of core pieces: tokens, backoff, validation, metadata, errors, scheduler.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "core/backoff.hpp"
#include "core/metadata.hpp"
#include "core/renewal_scheduler.hpp"
#include "core/token.hpp"
#include "core/validate.hpp"
#include "dlock/dlock.hpp"

// LeakSanitizer's check at exit locks the allocator, whose lock a parent thread may have held
// at fork(): in a forked child it can hang. The fork test's child exits through exit() on
// purpose (static destructors must not hang), so LSan is off in children only.
static const pid_t g_test_parent_pid = ::getpid();
// Exported (the test binary is built with hidden visibility): the sanitizer runtime, a shared
// library, finds the hook only in the dynamic symbol table.
extern "C" __attribute__((visibility("default"))) int __lsan_is_turned_off() {
  return ::getpid() != g_test_parent_pid ? 1 : 0;
}

namespace dlock::detail {
namespace {

using namespace std::chrono_literals;

TEST(Token, Is128BitHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto t = random_token();
    ASSERT_EQ(t.size(), 32u);
    ASSERT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos);
    ASSERT_TRUE(seen.insert(t).second);
  }
}

TEST(Backoff, GrowsAndCaps) {
  RetryPolicy p{.delay = 10ms, .backoff = Backoff::exponential, .max_delay = 100ms, .jitter = 0};
  EXPECT_EQ(backoff_delay(p, 1), 10ms);
  EXPECT_EQ(backoff_delay(p, 2), 20ms);
  EXPECT_EQ(backoff_delay(p, 3), 40ms);
  EXPECT_EQ(backoff_delay(p, 10), 100ms);
  EXPECT_EQ(backoff_delay(p, 1000), 100ms);
  p.backoff = Backoff::linear;
  EXPECT_EQ(backoff_delay(p, 3), 30ms);
  p.backoff = Backoff::constant;
  EXPECT_EQ(backoff_delay(p, 7), 10ms);
}

TEST(Backoff, JitterStaysInBand) {
  RetryPolicy p{.delay = 100ms, .backoff = Backoff::constant, .max_delay = 1s, .jitter = 0.2};
  std::set<long long> distinct;
  for (int i = 0; i < 1000; ++i) {
    auto d = backoff_delay(p, 1);
    ASSERT_GE(d, 80ms);
    ASSERT_LE(d, 120ms);
    distinct.insert(d.count());
  }
  EXPECT_GT(distinct.size(), 100u);
}

TEST(Validate, KeysAndTtls) {
  Capabilities caps;
  caps.binary_keys = false;
  caps.max_key_bytes = 8;
  caps.min_ttl = 1000ms;
  EXPECT_THROW(validate_key("", caps, "s", "t"), Error);
  EXPECT_THROW(validate_key("123456789", caps, "s", "t"), Error);
  EXPECT_THROW(validate_key(std::string("a\0", 2), caps, "s", "t"), Error);
  EXPECT_NO_THROW(validate_key("abc", caps, "s", "t"));
  EXPECT_EQ(validate_ttl(10ms, caps, "s", "k", "t"), 1000ms);
  EXPECT_EQ(validate_ttl(5s, caps, "s", "k", "t"), 5s);
  EXPECT_THROW(validate_ttl(0ms, caps, "s", "k", "t"), Error);
  EXPECT_THROW(validate_ttl(-1ms, caps, "s", "k", "t"), Error);
  EXPECT_THROW(validate_ttl(kMaxTtl + 1ms, caps, "s", "k", "t"), Error);
}

TEST(Validate, WaitPolicyContradictions) {
  LockOptions o;
  o.wait = {WaitPolicy::Mode::no_wait, 5s};
  EXPECT_THROW(validate_options(o, "s", "k"), Error);
  o.wait = WaitPolicy::up_to(-1ms);
  EXPECT_THROW(validate_options(o, "s", "k"), Error);
  o.wait = WaitPolicy::up_to(1s);
  EXPECT_NO_THROW(validate_options(o, "s", "k"));
  o.retry.jitter = 1.5;
  EXPECT_THROW(validate_options(o, "s", "k"), Error);
  o.retry.jitter = 0.1;
  o.retry.max_delay = 1ms;
  EXPECT_THROW(validate_options(o, "s", "k"), Error);
  o.retry.max_delay = 1s;
  o.metadata.assign(kMaxMetadataBytes + 1, 'x');
  EXPECT_THROW(validate_options(o, "s", "k"), Error);
}

TEST(Metadata, RoundTripsAndToleratesForeignValues) {
  auto raw = make_metadata("backup \"job\"");
  auto o = parse_metadata(raw);
  EXPECT_EQ(o.text, "backup \"job\"");
  EXPECT_EQ(o.pid, ::getpid());
  EXPECT_FALSE(o.host.empty());
  EXPECT_GT(o.acquired_unix_ms, 0);
  auto foreign = parse_metadata("not json at all");
  EXPECT_EQ(foreign.text, "not json at all");
  EXPECT_EQ(foreign.pid, 0);
}

TEST(Error, NamesStoreKeyAndStep) {
  Error e(errc::unavailable, "redis", "jobs/a", "acquire", "connection refused");
  EXPECT_EQ(e.code(), errc::unavailable);
  EXPECT_EQ(std::string(e.what()),
            "dlock: redis: key 'jobs/a': acquire: store unavailable: connection refused");
  EXPECT_EQ(e.code().category().name(), std::string("dlock"));
  std::error_code ec = errc::timeout;
  EXPECT_EQ(ec, errc::timeout);
}

TEST(Open, UnknownSchemeAndMalformedUrl) {
  for (const char* url : {"bogus://x", "no-scheme", "memory://x/path", "memory://x?y=1"}) {
    try {
      open(url);
      ADD_FAILURE() << url;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), errc::invalid_argument) << url;
    }
  }
  EXPECT_FALSE(supported_schemes().empty());
}

TEST(Store, DefaultConstructedIsClosed) {
  Store s;
  EXPECT_TRUE(s.closed());
  EXPECT_THROW(s.acquire({}, "k"), Error);
  Lease empty;
  EXPECT_FALSE(empty.held());
  EXPECT_EQ(empty.release().status, ReleaseStatus::already_released);
}

TEST(Store, DestroyingTheStoreWhileALeaseLivesKeepsTheLeaseUsable) {
  Lease l;
  {
    Store s = open("memory://outlive");
    l = s.acquire({}, "k");
  }
  EXPECT_TRUE(l.held());
  l.renew({}, 5s);
  EXPECT_EQ(l.release().status, ReleaseStatus::released);
}

TEST(Scheduler, ManyLeasesAutoRenewOnOneScheduler) {
  Store s = open("memory://");
  std::vector<Lease> leases;
  // TTL 1 s (renewed every 333 ms): a margin for the TSan build on a loaded 2-core machine,
  // where 300 ms once let a lease expire between two renewals.
  for (int i = 0; i < 2000; ++i) {
    leases.push_back(s.acquire({}, "k" + std::to_string(i), {.ttl = 1s, .auto_renew = true}));
  }
  std::this_thread::sleep_for(2500ms);
  for (auto& l : leases) ASSERT_TRUE(l.held());
  EXPECT_EQ(s.metrics().losses, 0u);
  EXPECT_GE(s.metrics().renewals, 2000u * 2);
  leases.clear();
  EXPECT_EQ(s.metrics().held, 0u);
}

}  // namespace
}  // namespace dlock::detail

namespace dlock::detail {
namespace {

// Waits for `pid` up to `limit`. A child still running then has its threads' stacks printed
// (gdb, when present) and is killed, so a hang is a prompt failure that says where it hung.
bool wait_or_dump(pid_t pid, std::chrono::seconds limit, int& status) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string cmd =
      "timeout 60 gdb -batch -p " + std::to_string(pid) + " -ex 'thread apply all bt' 2>&1";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "(no backtrace: gdb failed)\n");
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return false;
}

TEST(Fork, ChildCannotUseOrReleaseTheParentsLocks) {
  Store s = open("memory://fork");
  Lease lease = s.acquire({}, "k", {.ttl = std::chrono::seconds(10), .auto_renew = true});
  ASSERT_TRUE(s.try_lock({}, "k2"));
  pid_t pid = ::fork();  // The child skips LeakSanitizer's exit check: see below.
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // In the child: every use is refused, destructors and exit() must not hang or release.
    int bad = 0;
    bad += lease.held() ? 1 : 0;
    bad += lease.release().status == ReleaseStatus::failed ? 0 : 1;
    try {
      s.acquire({}, "other");
      bad++;
    } catch (const Error& e) {
      bad += e.code() == errc::unsupported ? 0 : 1;
    }
    std::exit(bad);  // Runs static destructors (the renewal scheduler's) in the child.
  }
  int status = 0;
  ASSERT_TRUE(wait_or_dump(pid, std::chrono::seconds(30), status))
      << "the child hung (its threads' stacks are above)";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The parent still holds both.
  EXPECT_TRUE(lease.held());
  EXPECT_TRUE(s.is_locked({}, "k"));
  EXPECT_TRUE(s.is_locked({}, "k2"));
  EXPECT_EQ(lease.release().status, ReleaseStatus::released);
}

}  // namespace
}  // namespace dlock::detail
