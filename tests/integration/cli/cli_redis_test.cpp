// End-to-end tests of the `dlock` binary against a real redis-server: a lock held by a client
// that writes no dlock metadata (redis-cli SET, redis-py's Lock) is shown as held by "a client
// without dlock metadata"; the global options reach a network store.
#include <fstream>

#include "cli_fixture.hpp"
#include "redis/redis_server.hpp"
#include "support/tcp_proxy.hpp"

namespace {

using namespace std::chrono_literals;
using dlock::test::Child;
using dlock::test::Cli;
using dlock::test::have_program;
using dlock::test::read_file;
using dlock::test::RedisServer;
using nlohmann::json;

constexpr const char* kForeign = "a client without dlock metadata";

class CliRedis : public Cli {
 protected:
  void SetUp() override {
    Cli::SetUp();
    if (!have_program("redis-server") || !have_program("redis-cli")) {
      GTEST_SKIP() << "redis-server or redis-cli not installed";
    }
    server_ = std::make_unique<RedisServer>();
    url_ = server_->url();
  }

  // Runs redis-cli against the server; returns its output.
  std::string redis_cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(server_->port())};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto out = path("redis-cli.out");
    std::filesystem::remove(out);
    Child c(argv, out);
    EXPECT_EQ(code_of(c.wait(10s)), 0);
    return read_file(out);
  }

  // Checks every way the CLI shows the foreign holder of `name`.
  void expect_shown_as_foreign(const std::string& name) {
    auto text = dlock({"status", "--store", url_, name});
    ASSERT_EQ(text.code, 0) << text.err;
    EXPECT_NE(text.out.find(": held"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("holder:         " + std::string(kForeign)), std::string::npos)
        << text.out;
    EXPECT_EQ(text.out.find("pid 0"), std::string::npos) << text.out;

    auto j = json::parse(dlock({"--store", url_, "status", "--json", name}).out);
    EXPECT_EQ(j["held"], true);
    EXPECT_EQ(j["fencing_token"], 0);
    EXPECT_EQ(j["owner"]["foreign"], true);
    EXPECT_GT(j["ttl_remaining_ms"].get<long>(), 0);

    auto list = dlock({"list", "--store", url_});
    EXPECT_NE(list.out.find(kForeign), std::string::npos) << list.out;

    auto miss = dlock({"run", "--no-wait", "--store", url_, name, "--", "true"});
    EXPECT_EQ(miss.code, 75);
    EXPECT_NE(miss.err.find("held by " + std::string(kForeign)), std::string::npos) << miss.err;
  }

  std::unique_ptr<RedisServer> server_;
  std::string url_;
};

TEST_F(CliRedis, ARedisCliSetIsShownAsAForeignHolder) {
  ASSERT_EQ(redis_cli({"SET", "lock:by-redis-cli", "not-dlock", "PX", "60000"}), "OK\n");
  expect_shown_as_foreign("by-redis-cli");
}

TEST_F(CliRedis, ARedisPyLockIsShownAsAForeignHolder) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0) GTEST_SKIP() << "python3 not installed";
  const auto script = path("hold.py");
  std::ofstream(script)
      << "import redis\n"
      << "r = redis.Redis(port=" << server_->port() << ")\n"
      << "assert r.lock('lock:by-redis-py', timeout=60).acquire(blocking=False)\n";
  const auto out = path("hold.out");
  Child py({python, script}, out);
  ASSERT_EQ(code_of(py.wait(30s)), 0) << read_file(out);  // redis-py leaves the key behind.
  expect_shown_as_foreign("by-redis-py");
}

TEST_F(CliRedis, GlobalOptionsBeforeTheSubcommandReachTheStore) {
  const auto file = path("env.txt");
  auto r = dlock({"--store", url_, "-v", "run", "--ttl", "600ms", "g", "--", "sh", "-c",
                  "echo \"$DLOCK_STORE|$DLOCK_FENCING_TOKEN\" > " + file + "; sleep 0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string seen = read_file(file);
  ASSERT_EQ(seen.rfind(url_ + "|", 0), 0u) << seen;
  EXPECT_GT(std::stoull(seen.substr(url_.size() + 1)), 0u) << seen;  // A fencing token.
  EXPECT_NE(r.err.find("acquired lock \"g\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("renewed lock \"g\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("released lock \"g\""), std::string::npos) << r.err;
  // The key is gone after the release.
  EXPECT_EQ(redis_cli({"EXISTS", "lock:g"}), "0\n");
}

TEST_F(CliRedis, OnRiskTermStopsTheCommandOnceTheStoreStopsAnswering) {
  dlock::test::TcpProxy proxy(server_->port());
  const std::string via = "redis://127.0.0.1:" + std::to_string(proxy.port()) +
                          "?request_timeout=300ms&connect_timeout=300ms";
  const auto started = path("started");
  auto run = background({"run", "--store", via, "--ttl", "6s", "--on-risk", "term", "cut", "--",
                         "sh", "-c", "touch " + started + "; sleep 60"});
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(started); })) << log();
  const auto cut = std::chrono::steady_clock::now();
  proxy.blackhole();  // Connections stay open; nothing comes back (a partition).
  const int status = run.wait(10s);
  const auto took = std::chrono::steady_clock::now() - cut;
  EXPECT_EQ(code_of(status), 76) << log();
  // Stopped when the renewal failed (the first falls due 2 s after the grant), well before
  // the 6 s validity ended.
  EXPECT_LT(took, 5s) << log();
  EXPECT_NE(log().find("is at risk"), std::string::npos) << log();
  EXPECT_NE(log().find("--on-risk term"), std::string::npos) << log();
  EXPECT_EQ(log().find("was lost"), std::string::npos) << log();  // Stopped before any loss.
}

TEST_F(CliRedis, AtRiskAndRecoveredAreLogged) {
  dlock::test::TcpProxy proxy(server_->port());
  const std::string via = "redis://127.0.0.1:" + std::to_string(proxy.port()) +
                          "?request_timeout=300ms&connect_timeout=300ms";
  const auto started = path("started");
  auto run = background({"run", "--store", via, "--ttl", "6s", "risky", "--", "sh", "-c",
                         "touch " + started + "; sleep 5"});
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(started); })) << log();
  proxy.blackhole();
  ASSERT_TRUE(wait_for([&] { return log().find("is at risk") != std::string::npos; }, 5s)) << log();
  proxy.restore();  // The next renewal (retried every TTL/12) succeeds again.
  EXPECT_TRUE(wait_for([&] { return log().find("recovered") != std::string::npos; }, 5s)) << log();
  EXPECT_EQ(code_of(run.wait(15s)), 0) << log();
}

TEST_F(CliRedis, ReleaseForceEndsTheRunWithinASecondAndExits76) {
  const auto started = path("started");
  // A 30 s TTL: only the store's report (the revoked channel) ends it this soon.
  auto run = background({"run", "--store", url_, "--ttl", "30s", "forced", "--", "sh", "-c",
                         "touch " + started + "; exec sleep 60"});
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(started); })) << log();
  std::this_thread::sleep_for(300ms);
  const auto t0 = std::chrono::steady_clock::now();
  auto rel = dlock({"release", "--store", url_, "--force", "--json", "forced"});
  EXPECT_EQ(rel.code, 0) << rel.err;
  EXPECT_EQ(json::parse(rel.out)["released"], true);
  EXPECT_EQ(code_of(run.wait(10s)), 76) << log();
  // The SIGTERM goes out within a second; the rest is the command's exit and process start-up.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_NE(log().find("was lost"), std::string::npos) << log();
}

}  // namespace
