// The Redis connection state machine without a network or a clock: the handshake it asks for
// and how it judges the replies, the Sentinel lookup (rotation, failures, TLS to the
// sentinels), deadlines, backoff, and stale-connection detection.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include <gtest/gtest.h>

#include "redis/connection_fsm.hpp"
#include "redis/resp.hpp"

namespace dlock::detail::redis {
namespace {

using namespace std::chrono_literals;
using Fsm = ConnectionFsm;
using Kind = Fsm::Step::Kind;
const Fsm::clock::time_point t0{std::chrono::seconds(1000)};

std::string wire(std::vector<std::vector<std::string_view>> cmds) {
  std::string out;
  for (auto& c : cmds) out += format_command(c);
  return out;
}

Fsm::Step feed(Fsm& fsm, const std::string& bytes, Fsm::clock::time_point now = t0) {
  return fsm.on_bytes(bytes.data(), bytes.size(), now);
}

ConnectionOptions plain() {
  ConnectionOptions o;
  o.host = "10.0.0.1";
  o.port = 6400;
  o.connect_timeout = 1000ms;
  o.request_timeout = 500ms;
  return o;
}

ConnectionOptions with_sentinels(std::string password = "") {
  ConnectionOptions o = plain();
  o.sentinels =
      std::make_shared<Sentinels>(std::vector<Address>{{"s1", 26379}, {"s2", 26380}, {"s3", 26381}},
                                  "mymaster", "", std::move(password));
  return o;
}

// A reply to SENTINEL get-master-addr-by-name.
std::string master_at(const std::string& host, const std::string& port) {
  return "*2\r\n$" + std::to_string(host.size()) + "\r\n" + host + "\r\n$" +
         std::to_string(port.size()) + "\r\n" + port + "\r\n";
}

TEST(RedisConnectionFsm, ConnectsAndShakesHandsWithTheNode) {
  Fsm fsm(plain());
  auto s = fsm.start(t0);
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target, (Address{"10.0.0.1", 6400}));
  EXPECT_FALSE(s.tls);
  EXPECT_EQ(s.deadline, t0 + 1000ms);
  EXPECT_TRUE(fsm.connecting());
  s = fsm.on_connected(t0 + 1ms);
  ASSERT_EQ(s.kind, Kind::write);
  EXPECT_EQ(s.wire, wire({{"CLIENT", "SETNAME", "dlock"}, {"PING"}}));
  // Replies split anywhere: the machine keeps reading until both are in.
  EXPECT_EQ(feed(fsm, "+O").kind, Kind::read);
  EXPECT_EQ(feed(fsm, "K\r\n+PO").kind, Kind::read);
  EXPECT_EQ(feed(fsm, "NG\r\n").kind, Kind::ready);
  EXPECT_TRUE(fsm.ready());
  EXPECT_FALSE(fsm.connecting());
}

TEST(RedisConnectionFsm, HandshakeCarriesCredentialsDatabaseAndName) {
  ConnectionOptions o = plain();
  o.user = "locker";
  o.password = "pw";
  o.has_password = true;
  o.db = 3;
  Fsm fsm(o);
  fsm.start(t0);
  EXPECT_EQ(
      fsm.on_connected(t0).wire,
      wire({{"AUTH", "locker", "pw"}, {"SELECT", "3"}, {"CLIENT", "SETNAME", "dlock"}, {"PING"}}));
  // A subscriber skips SELECT (pub/sub ignores databases); no user means AUTH <password>.
  o.user.clear();
  o.subscriber = true;
  EXPECT_EQ(Fsm::handshake_commands(o),
            (std::vector<std::vector<std::string>>{
                {"AUTH", "pw"}, {"CLIENT", "SETNAME", "dlock"}, {"PING"}}));
}

TEST(RedisConnectionFsm, RefusedAuthFailsTheAttemptAsAuthFailed) {
  ConnectionOptions o = plain();
  o.password = "wrong";
  o.has_password = true;
  Fsm fsm(o);
  fsm.start(t0);
  fsm.on_connected(t0);
  auto s = feed(fsm, "-WRONGPASS invalid username-password pair\r\n+OK\r\n+PONG\r\n");
  ASSERT_EQ(s.kind, Kind::failed);
  EXPECT_EQ(s.failure.code, errc::auth_failed);
  EXPECT_NE(s.failure.detail.find("AUTH refused"), std::string::npos) << s.failure.detail;
  EXPECT_EQ(s.failure.detail.find("wrong"), std::string::npos) << "no password in messages";
  EXPECT_FALSE(fsm.ready());
}

TEST(RedisConnectionFsm, AClientNameTheUserMayNotSetIsNoFailure) {
  Fsm fsm(plain());
  fsm.start(t0);
  fsm.on_connected(t0);
  EXPECT_EQ(feed(fsm, "-NOPERM this user has no permissions\r\n+PONG\r\n").kind, Kind::ready);
}

TEST(RedisConnectionFsm, GarbageOrExtraRepliesFailAsProtocolErrors) {
  Fsm fsm(plain());
  fsm.start(t0);
  fsm.on_connected(t0);
  auto s = feed(fsm, "?what\r\n");
  ASSERT_EQ(s.kind, Kind::failed);
  EXPECT_EQ(s.failure.code, errc::protocol_error);
  Fsm extra(plain());
  extra.start(t0 + 1h);
  extra.on_connected(t0 + 1h);
  EXPECT_EQ(feed(extra, "+OK\r\n+PONG\r\n+PONG\r\n", t0 + 1h).failure.code, errc::protocol_error);
}

TEST(RedisConnectionFsm, TimeoutsAndIoErrorsBackOffExponentiallyUpToTwoSeconds) {
  Fsm fsm(plain());
  auto now = t0;
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 9; ++i) {
    auto s = fsm.start(now);
    ASSERT_EQ(s.kind, Kind::connect) << i;
    s = i % 2 ? fsm.on_io_error(Failure{errc::unavailable, "connect: refused"}, now)
              : fsm.on_timeout(now);
    ASSERT_EQ(s.kind, Kind::failed);
    EXPECT_EQ(s.failure.code, errc::unavailable);
    if (i % 2 == 0) {
      EXPECT_NE(s.failure.detail.find("connect timeout (1000 ms)"), std::string::npos);
    }
    delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(fsm.retry_at() - now));
    // Before the backoff ends, `start` says to wait until it does.
    auto w = fsm.start(now);
    EXPECT_EQ(w.kind, Kind::wait);
    EXPECT_EQ(w.deadline, fsm.retry_at());
    now = fsm.retry_at();
  }
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{50ms, 100ms, 200ms, 400ms, 800ms,
                                                            1600ms, 2000ms, 2000ms, 2000ms}));
  EXPECT_EQ(fsm.failures(), 9);
  // Success resets the backoff; a healthy connection that drops retries at once.
  fsm.start(now);
  fsm.on_connected(now);
  ASSERT_EQ(feed(fsm, "+OK\r\n+PONG\r\n", now).kind, Kind::ready);
  EXPECT_EQ(fsm.failures(), 0);
  fsm.on_dropped(now + 5s);
  EXPECT_FALSE(fsm.ready());
  EXPECT_EQ(fsm.start(now + 5s).kind, Kind::connect);
}

TEST(RedisConnectionFsm, AnAttemptCutShortByTheCallerCountsNoFailure) {
  Fsm fsm(plain());
  fsm.start(t0);
  fsm.abort();
  EXPECT_FALSE(fsm.connecting());
  EXPECT_EQ(fsm.failures(), 0);
  EXPECT_EQ(fsm.start(t0).kind, Kind::connect);
}

TEST(RedisConnectionFsm, SentinelLookupThenRoleCheckedHandshakeWithTheMaster) {
  auto o = with_sentinels("spw");
  Fsm fsm(o);
  auto s = fsm.start(t0);
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target, (Address{"s1", 26379}));
  // Each sentinel gets a third of the connect timeout.
  EXPECT_EQ(s.deadline, t0 + 333ms);
  s = fsm.on_connected(t0);
  EXPECT_EQ(s.wire, wire({{"AUTH", "spw"}, {"SENTINEL", "get-master-addr-by-name", "mymaster"}}));
  s = feed(fsm, "+OK\r\n" + master_at("10.0.0.9", "6390"), t0 + 10ms);
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target, (Address{"10.0.0.9", 6390}));
  EXPECT_EQ(s.deadline, t0 + 10ms + 1000ms);
  s = fsm.on_connected(t0 + 11ms);
  EXPECT_EQ(s.wire, wire({{"ROLE"}, {"CLIENT", "SETNAME", "dlock"}, {"PING"}}));
  // A node that is no longer a master (failover in progress) is refused.
  s = feed(fsm, "*3\r\n$5\r\nslave\r\n$1\r\nx\r\n:1\r\n+OK\r\n+PONG\r\n", t0 + 12ms);
  ASSERT_EQ(s.kind, Kind::failed);
  EXPECT_EQ(s.failure.code, errc::unavailable);
  EXPECT_NE(s.failure.detail.find("not a master"), std::string::npos);
  // The next attempt (after the backoff) asks again, and a master passes.
  const auto now = fsm.retry_at();
  fsm.start(now);
  fsm.on_connected(now);
  feed(fsm, "+OK\r\n" + master_at("10.0.0.9", "6390"), now);
  fsm.on_connected(now);
  EXPECT_EQ(feed(fsm, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n+OK\r\n+PONG\r\n", now).kind, Kind::ready);
}

TEST(RedisConnectionFsm, SentinelsAreAskedInTurnAndTheOneThatAnsweredFirstNextTime) {
  auto o = with_sentinels();
  Fsm fsm(o);
  auto s = fsm.start(t0);
  EXPECT_EQ(s.target.host, "s1");
  s = fsm.on_io_error(Failure{errc::unavailable, "connect: Connection refused"}, t0);
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target.host, "s2");
  fsm.on_connected(t0);
  s = feed(fsm, "*-1\r\n");  // s2 does not know the master.
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target.host, "s3");
  fsm.on_connected(t0);
  s = feed(fsm, master_at("m", "7000"));
  ASSERT_EQ(s.kind, Kind::connect);
  EXPECT_EQ(s.target, (Address{"m", 7000}));
  EXPECT_EQ(o.sentinels->order().front().host, "s3");
  // Nobody knows: one failure naming every sentinel and what went wrong there.
  Fsm other(o);
  other.start(t0);
  other.on_timeout(t0);
  other.on_connected(t0);
  feed(other, "-ERR unknown\r\n");
  other.on_connected(t0);
  s = feed(other, "*1\r\n$1\r\nx\r\n");
  ASSERT_EQ(s.kind, Kind::failed);
  EXPECT_EQ(s.failure.code, errc::unavailable);
  EXPECT_NE(s.failure.detail.find("sentinel: s3:26381: no answer within 333 ms"), std::string::npos)
      << s.failure.detail;
  EXPECT_NE(s.failure.detail.find("s1:26379: ERR unknown"), std::string::npos);
  EXPECT_NE(s.failure.detail.find("s2:26380: does not know master 'mymaster'"), std::string::npos);
}

TEST(RedisConnectionFsm, TlsReachesTheSentinelsAndTheMasterEachUnderItsName) {
  auto o = with_sentinels();
  // The state machine only looks at whether TLS is configured: a non-null stand-in that is
  // never dereferenced (the shells own the real context).
  static int stand_in = 0;
  o.tls = std::shared_ptr<asio::ssl::context>(std::shared_ptr<void>(),
                                              reinterpret_cast<asio::ssl::context*>(&stand_in));
  Fsm fsm(o);
  auto s = fsm.start(t0);
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.tls_name, "s1");
  fsm.on_connected(t0);
  s = feed(fsm, master_at("10.1.1.1", "6379"));
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.tls_name, "10.1.1.1");
  // A configured name (sni) is what every certificate is checked against.
  o.tls_name = "redis.example";
  Fsm named(o);
  EXPECT_EQ(named.start(t0).tls_name, "redis.example");
}

TEST(RedisConnectionFsm, AStaleRequestOrAnIdleConnectionIsNoticed) {
  Fsm fsm(plain());
  EXPECT_FALSE(fsm.stale(t0, t0 + 1h)) << "not established: nothing to be stale";
  fsm.start(t0);
  fsm.on_connected(t0);
  ASSERT_EQ(feed(fsm, "+OK\r\n+PONG\r\n", t0).kind, Kind::ready);
  EXPECT_FALSE(fsm.stale(std::nullopt, t0 + 1h));
  EXPECT_FALSE(fsm.stale(t0, t0 + 499ms));
  auto why = fsm.stale(t0, t0 + 500ms);
  ASSERT_TRUE(why);
  EXPECT_EQ(why->code, errc::timeout);
  EXPECT_NE(why->detail.find("request timeout (500 ms)"), std::string::npos);
  // Probed before use only when idle (nothing in flight) and not answered just now.
  EXPECT_FALSE(fsm.probe_due(false, t0 + 5ms));
  EXPECT_TRUE(fsm.probe_due(false, t0 + Fsm::kProbeIdleAfter));
  EXPECT_FALSE(fsm.probe_due(true, t0 + 1s));
  fsm.on_reply(t0 + 1s);
  EXPECT_FALSE(fsm.probe_due(false, t0 + 1s + 5ms));
}

}  // namespace
}  // namespace dlock::detail::redis
#endif
