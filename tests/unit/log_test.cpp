// The log hook (dlock/log.hpp): which records a lock's life produces, their fields, the level
// filter, and the two formatters.
#include "dlock/log.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "dlock/dlock.hpp"

namespace dlock {
namespace {

using namespace std::chrono_literals;

// Copies every record it receives (the record's views end with the call).
struct Captured {
  LogLevel level;
  std::string message;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string field(const std::string& name) const {
    for (auto& [n, v] : fields) {
      if (n == name) return v;
    }
    return "<absent>";
  }
};

class LogTest : public ::testing::Test {
 protected:
  void listen(LogLevel min) {
    set_log_sink(
        [this](const LogRecord& r) {
          Captured c{r.level, std::string(r.message), {}};
          for (auto& f : r.fields) c.fields.emplace_back(std::string(f.name), f.value);
          std::lock_guard lk(mu_);
          records_.push_back(std::move(c));
          cv_.notify_all();
        },
        min);
  }
  void TearDown() override { set_log_sink({}); }

  std::vector<Captured> records() {
    std::lock_guard lk(mu_);
    return records_;
  }
  // The first record with `message` for `key`, waiting up to 5 s for it (some come from the
  // renewal thread).
  std::optional<Captured> wait_for(const std::string& message, const std::string& key) {
    std::unique_lock lk(mu_);
    std::optional<Captured> found;
    cv_.wait_for(lk, 5s, [&] {
      for (auto& r : records_) {
        if (r.message == message && r.field("key") == key) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Captured> records_;
};

TEST_F(LogTest, ALocksLifeIsLoggedWithItsStoreKeyAndFencingToken) {
  listen(LogLevel::debug);
  Store s = open("memory://log-life");
  std::uint64_t fencing = 0;
  {
    Lease l = s.acquire({}, "job");
    fencing = l.fencing_token();
    l.renew({}, 5s);
  }
  auto acquired = wait_for("acquired", "job");
  ASSERT_TRUE(acquired);
  EXPECT_EQ(acquired->level, LogLevel::debug);
  EXPECT_EQ(acquired->field("store"), "memory");
  EXPECT_EQ(acquired->field("fencing"), std::to_string(fencing));
  EXPECT_NE(acquired->field("waited_ms"), "<absent>");
  auto renewed = wait_for("renewed", "job");
  ASSERT_TRUE(renewed);
  EXPECT_EQ(renewed->field("fencing"), std::to_string(fencing));
  auto released = wait_for("released", "job");
  ASSERT_TRUE(released);
  EXPECT_EQ(released->field("fencing"), std::to_string(fencing));
}

TEST_F(LogTest, ALossIsAnErrorRecordWithItsReason) {
  listen(LogLevel::debug);
  Store holder = open("memory://log-loss");
  Store operator_ = open("memory://log-loss");
  Lease l = holder.acquire({}, "job", {.ttl = 30s, .auto_renew = true});
  ASSERT_TRUE(operator_.force_release({}, "job"));
  auto lost = wait_for("lost", "job");
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->level, LogLevel::error);
  EXPECT_EQ(lost->field("reason"), "store_reported");
  EXPECT_EQ(lost->field("fencing"), std::to_string(l.fencing_token()));
}

TEST_F(LogTest, AcquisitionsThatFailSayWhy) {
  listen(LogLevel::debug);
  Store s = open("memory://log-fail");
  Lease held = s.acquire({}, "busy");
  EXPECT_FALSE(s.try_acquire({}, "busy"));
  EXPECT_TRUE(wait_for("not acquired", "busy"));
  EXPECT_THROW(s.acquire({}, "busy", {.wait = WaitPolicy::up_to(50ms)}), Error);
  auto failed = wait_for("acquire failed", "busy");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->level, LogLevel::info);
  EXPECT_NE(failed->field("error").find("busy"), std::string::npos) << failed->field("error");
}

TEST_F(LogTest, TheLevelFiltersAndAnEmptySinkTurnsLoggingOff) {
  listen(LogLevel::info);
  Store s = open("memory://log-level");
  { Lease l = s.acquire({}, "quiet"); }
  for (auto& r : records()) EXPECT_NE(r.level, LogLevel::debug) << r.message;
  set_log_sink({});
  Lease l = s.acquire({}, "off");
  EXPECT_FALSE(s.try_acquire({}, "off"));
  l.release();
  for (auto& r : records()) EXPECT_NE(r.field("key"), "off") << r.message;
}

TEST_F(LogTest, ASinkThatThrowsDoesNotReachTheCaller) {
  set_log_sink([](const LogRecord&) { throw std::runtime_error("sink"); }, LogLevel::debug);
  Store s = open("memory://log-throw");
  EXPECT_NO_THROW({ Lease l = s.acquire({}, "k"); });
}

TEST(LogFormat, TextQuotesValuesThatNeedItAndJsonEscapes) {
  const LogField fields[] = {{"store", "redis"}, {"key", "a b"}, {"error", "say \"no\""}};
  const LogRecord r{LogLevel::warning, "renewal failed", fields};
  EXPECT_EQ(format_text(r),
            "warning renewal failed store=redis key=\"a b\" error=\"say \\\"no\\\"\"");
  EXPECT_EQ(format_json(r),
            "{\"level\":\"warning\",\"message\":\"renewal failed\",\"store\":\"redis\","
            "\"key\":\"a b\",\"error\":\"say \\\"no\\\"\"}");
  EXPECT_EQ(r.field("key"), "a b");
  EXPECT_EQ(r.field("missing"), "");
}

}  // namespace
}  // namespace dlock
