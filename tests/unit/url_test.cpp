#include "core/url.hpp"

#include <gtest/gtest.h>

#include "dlock/error.hpp"

namespace dlock::detail {
namespace {

using namespace std::chrono_literals;

TEST(Url, ParsesEverything) {
  auto u = parse_url("redis://alice:s%40cret@h1:7000,[::1],h3/2?prefix=lk%3A&timeout=5s", 6379);
  EXPECT_EQ(u.scheme, "redis");
  EXPECT_EQ(u.user, "alice");
  EXPECT_EQ(u.password, "s@cret");
  ASSERT_EQ(u.endpoints.size(), 3u);
  EXPECT_EQ(u.endpoints[0].host, "h1");
  EXPECT_EQ(u.endpoints[0].port, 7000);
  EXPECT_EQ(u.endpoints[1].host, "::1");
  EXPECT_EQ(u.endpoints[1].port, 6379);
  EXPECT_EQ(u.endpoints[2].port, 6379);
  EXPECT_EQ(u.path, "/2");
  EXPECT_EQ(u.query.at("prefix"), "lk:");
  EXPECT_EQ(query_duration(u, "timeout", 1s), 5s);
  EXPECT_EQ(u.redacted().find("s@cret"), std::string::npos);
  EXPECT_NE(u.redacted().find("***"), std::string::npos);
}

TEST(Url, FileUrlHasEmptyAuthority) {
  auto u = parse_url("file:///run/dlock", 0);
  EXPECT_TRUE(u.endpoints.empty());
  EXPECT_EQ(u.path, "/run/dlock");
}

TEST(Url, RejectsMalformed) {
  for (const char* bad : {"nope", "://x", "redis://h:0", "redis://h:70000", "redis://h:abc",
                          "redis://h:", "redis://[::1", "redis://h?a=1&a=2", "redis://h/%zz",
                          "redis://,h", "re dis://h"}) {
    try {
      parse_url(bad, 6379);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), errc::invalid_argument) << bad;
    }
  }
}

TEST(Url, UnknownQueryKeysAndBadValues) {
  auto u = parse_url("redis://h?prefix=a&bogus=1&n=x", 6379);
  EXPECT_THROW(check_query_keys(u, {"prefix"}), Error);
  EXPECT_THROW(query_int(u, "n", 0, 0, 10), Error);
  EXPECT_THROW(query_bool(u, "n", false), Error);
}

TEST(Duration, Units) {
  EXPECT_EQ(parse_duration("500ms", "t"), 500ms);
  EXPECT_EQ(parse_duration("10s", "t"), 10s);
  EXPECT_EQ(parse_duration("2m", "t"), 120s);
  EXPECT_EQ(parse_duration("1h", "t"), 3600s);
  EXPECT_EQ(parse_duration("1.5s", "t"), 1500ms);
  EXPECT_EQ(parse_duration("250", "t"), 250ms);
  for (const char* bad : {"", "-1s", "10x", "s", "1e20s", "nan", "nans", "inf"}) {
    EXPECT_THROW(parse_duration(bad, "t"), Error) << bad;
  }
}

}  // namespace
}  // namespace dlock::detail
