// The `dlock` command on postgres://: run a command under a lock (its environment, exclusion
// between runs), status and list in JSON, release --force ending a run at once (the holder
// hears it by NOTIFY, long before its TTL), and the exit codes of bad stores.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/postgres/shared_server.hpp"

#ifdef DLOCK_CLI_PATH
extern char** environ;

namespace dlock::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

struct CliRun {
  int code = -1;  ///< Exit code, or 128+N when killed by signal N.
  std::string out, err;
};

class PostgresCli : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = shared_postgres().server.url("table=cli_locks");
    ::setenv("DLOCK_STORE", store_.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("DLOCK_STORE"); }

  // Runs dlock to completion, stdout and stderr apart.
  CliRun dlock(std::vector<std::string> args) {
    args.insert(args.begin(), DLOCK_CLI_PATH);
    const auto out = dir_.path() / ("out" + std::to_string(seq_)),
               err = dir_.path() / ("err" + std::to_string(seq_));
    ++seq_;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    CliRun r;
    if (::posix_spawn(&pid, DLOCK_CLI_PATH, &fa, nullptr, argv.data(), environ) == 0) {
      int st = 0;
      ::waitpid(pid, &st, 0);
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    posix_spawn_file_actions_destroy(&fa);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }

  Child background(std::vector<std::string> args) {
    args.insert(args.begin(), DLOCK_CLI_PATH);
    return Child(args, (dir_.path() / "background.log").string());
  }

  bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 20s) {
    for (auto until = std::chrono::steady_clock::now() + limit;
         std::chrono::steady_clock::now() < until;) {
      if (cond()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  bool held(const std::string& name) {
    auto r = dlock({"status", "--json", name});
    return r.code == 0 && json::parse(r.out, nullptr, false).value("held", false);
  }

  static int code_of(int wstatus) {
    if (wstatus < 0) return -1;
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string log() const { return read_file(dir_.path() / "background.log"); }

  TempDir dir_{"dlock-postgres-cli"};
  std::string store_;
  int seq_ = 0;
};

TEST_F(PostgresCli, RunGivesTheCommandTheLockAndStatusListAndJsonShowIt) {
  const auto file = path("env.txt");
  ASSERT_EQ(dlock({"run", "--store", store_, "env/job", "--", "sh", "-c",
                   "echo \"$DLOCK_NAME|$DLOCK_FENCING_TOKEN\" > " + file})
                .code,
            0);
  const auto first = read_file(file);
  EXPECT_EQ(first.rfind("env/job|", 0), 0u) << first;
  Child run = background({"run", "--metadata", "nightly", "env/job", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("env/job"); })) << log();
  auto s = json::parse(dlock({"status", "--json", "env/job"}).out);
  EXPECT_EQ(s["owner"]["text"], "nightly");
  EXPECT_EQ(s["owner"]["pid"], run.pid());
  EXPECT_GT(s["fencing_token"].get<long>(), std::stol(first.substr(first.find('|') + 1)));
  auto l = json::parse(dlock({"list", "--json", "env/"}).out);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["name"], "env/job");
  EXPECT_NE(dlock({"list"}).out.find("env/job"), std::string::npos);
  run.signal(SIGTERM);
  run.wait(20s);
  EXPECT_FALSE(held("env/job"));
}

TEST_F(PostgresCli, TwoRunsOnOneNameExcludeEachOther) {
  const std::string inside = path("inside"), overlaps = path("overlaps"), tokens = path("tokens");
  const std::string script = "mkdir " + inside + " 2>/dev/null || echo overlap >> " + overlaps +
                             "; echo $DLOCK_FENCING_TOKEN >> " + tokens + "; sleep 0.2; rmdir " +
                             inside;
  std::vector<Child> runs;
  for (int i = 0; i < 3; ++i) runs.push_back(background({"run", "excl", "--", "sh", "-c", script}));
  for (auto& r : runs) EXPECT_EQ(code_of(r.wait(60s)), 0) << log();
  EXPECT_FALSE(fs::exists(overlaps)) << read_file(overlaps);
  std::ifstream in(tokens);
  std::set<long> seen;
  for (long t; in >> t;) seen.insert(t);
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(PostgresCli, ReleaseForceEndsTheRunAtOnceAndExits76) {
  const auto started = path("started");
  // A 30 s TTL: only the store's report (NOTIFY to the holder) ends it this soon.
  Child run = background(
      {"run", "--ttl", "30s", "forced", "--", "sh", "-c", "touch " + started + "; exec sleep 60"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  std::this_thread::sleep_for(300ms);
  const auto t0 = std::chrono::steady_clock::now();
  auto rel = dlock({"release", "--force", "--json", "forced"});
  EXPECT_EQ(rel.code, 0) << rel.err;
  EXPECT_EQ(json::parse(rel.out)["released"], true);
  EXPECT_EQ(code_of(run.wait(10s)), 76) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(log().find("was lost"), std::string::npos) << log();
  EXPECT_EQ(dlock({"release", "--force", "forced"}).code, 1);  // Nothing left to release.
}

TEST_F(PostgresCli, BadStoresGiveTheDocumentedExitCodes) {
  auto& srv = shared_postgres().server;
  EXPECT_EQ(dlock({"status", "--store", srv.url("", PostgresServer::kAdmin, "wrong"), "x"}).code,
            69);
  EXPECT_EQ(dlock({"status", "--store",
                   "postgres://u:p@127.0.0.1:" + std::to_string(free_port()) + "/db", "x"})
                .code,
            69);
  EXPECT_EQ(
      dlock({"status", "--store",
             srv.url("", PostgresServer::kAdmin, PostgresServer::kAdminPassword, "nodb"), "x"})
          .code,
      69);
  EXPECT_EQ(dlock({"status", "--store", srv.url("sslmode=sometimes"), "x"}).code, 64);
  auto busy = background({"run", "busy", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("busy"); })) << log();
  EXPECT_EQ(dlock({"run", "--no-wait", "busy", "--", "true"}).code, 75);
}

}  // namespace
}  // namespace dlock::test
#endif
