// End-to-end tests of the `dlock` binary on the embedded store: exit codes, the child's
// environment, signal forwarding, kill on loss, exclusion between two `dlock run`, JSON
// output, crash of a holder, usage errors, the demo. Each test has its own store directory.
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "cli_fixture.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using dlock::test::Child;
using dlock::test::Cli;
using dlock::test::read_file;
using nlohmann::json;

TEST_F(Cli, ExitsWithTheCommandsStatus) {
  EXPECT_EQ(dlock({"run", "job", "--", "true"}).code, 0);
  EXPECT_EQ(dlock({"run", "job", "--", "sh", "-c", "exit 7"}).code, 7);
  EXPECT_EQ(dlock({"run", "job", "--", "sh", "-c", "kill -TERM $$"}).code, 128 + SIGTERM);
  EXPECT_EQ(dlock({"run", "job", "--", "/nonexistent/command"}).code, 127);
  EXPECT_EQ(dlock({"run", "job", "--", "no-such-command-on-path"}).code, 127);
  std::ofstream(path("not-executable")) << "#!/bin/sh\n";
  EXPECT_EQ(dlock({"run", "job", "--", path("not-executable")}).code, 126);
  EXPECT_FALSE(held("job"));  // Released after each run.
}

TEST_F(Cli, CommandGetsTheLockInItsEnvironment) {
  const auto file = path("env.txt");
  const std::string script = "echo \"$DLOCK_NAME|$DLOCK_STORE|$DLOCK_FENCING_TOKEN\" > " + file;
  ASSERT_EQ(dlock({"run", "env/job", "--", "sh", "-c", script}).code, 0);
  auto first = read_file(file);
  EXPECT_EQ(first, "env/job|" + store_ + "|1\n");
  ASSERT_EQ(dlock({"run", "env/job", "--", "sh", "-c", script}).code, 0);
  EXPECT_EQ(read_file(file), "env/job|" + store_ + "|2\n");  // Fencing tokens grow.
}

TEST_F(Cli, UsageErrorsExit64) {
  EXPECT_EQ(dlock({}).code, 64);
  EXPECT_EQ(dlock({"frobnicate"}).code, 64);
  EXPECT_EQ(dlock({"run", "job"}).code, 64);  // No command.
  EXPECT_EQ(dlock({"run", "--ttl", "soon", "job", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"run", "--wait", "1s", "--no-wait", "job", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"run", "--bogus", "job", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"run", "--ttl", "nan", "job", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"run", "--kill-after", "9000h", "job", "--", "true"}).code, 64);  // > 1 year.
  EXPECT_EQ(dlock({"run", "--wait", "1e9h", "job", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"status"}).code, 64);
  auto no_force = dlock({"release", "job"});
  EXPECT_EQ(no_force.code, 64);
  EXPECT_NE(no_force.err.find("--force"), std::string::npos);
  EXPECT_EQ(dlock({"demo", "--workers", "0"}).code, 64);
  EXPECT_EQ(dlock({"--help"}).code, 0);
  for (std::string sub : {"run", "status", "list", "release", "demo"}) {
    auto help = dlock({sub, "--help"});
    EXPECT_EQ(help.code, 0) << sub;
    EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << sub;
  }
}

TEST_F(Cli, MemoryStoreIsRefused) {
  auto r = dlock({"run", "--store", "memory://", "job", "--", "true"});
  EXPECT_EQ(r.code, 64);
  EXPECT_NE(r.err.find("memory://"), std::string::npos) << r.err;
  ::setenv("DLOCK_STORE", "memory://x", 1);
  EXPECT_EQ(dlock({"status", "job"}).code, 64);
}

TEST_F(Cli, UnsafeStoreDirectoryExits69) {
  const auto open_dir = dir_.path() / "world-writable";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  auto r = dlock({"status", "--store", "file://" + open_dir.string(), "job"});
  EXPECT_EQ(r.code, 69);
  EXPECT_NE(r.err.find("writable"), std::string::npos) << r.err;
}

TEST_F(Cli, NotAcquiredInTimeExits75) {
  Child holder = background({"run", "busy", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("busy"); })) << log();
  auto no_wait = dlock({"run", "--no-wait", "busy", "--", "true"});
  EXPECT_EQ(no_wait.code, 75);
  EXPECT_NE(no_wait.err.find("held by pid"), std::string::npos) << no_wait.err;
  EXPECT_EQ(dlock({"run", "--wait", "200ms", "busy", "--", "true"}).code, 75);
}

TEST_F(Cli, TwoRunsOnOneNameExcludeEachOther) {
  // Each command fails loudly if another one is inside at the same time.
  const std::string inside = path("inside"), overlaps = path("overlaps"), tokens = path("tokens");
  const std::string script = "mkdir " + inside + " 2>/dev/null || echo overlap >> " + overlaps +
                             "; echo $DLOCK_FENCING_TOKEN >> " + tokens + "; sleep 0.2; rmdir " +
                             inside;
  std::vector<Child> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(background({"run", "excl", "--", "sh", "-c", script}));
  for (auto& r : runs) EXPECT_EQ(code_of(r.wait(60s)), 0) << log();
  EXPECT_FALSE(fs::exists(overlaps)) << read_file(overlaps);
  std::ifstream in(tokens);
  std::set<int> seen;
  for (int t; in >> t;) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int>{1, 2, 3, 4}));
}

TEST_F(Cli, ForwardsSigtermToTheCommand) {
  const auto started = path("started"), got = path("got");
  const std::string script = "trap 'echo term > " + got + "; exit 42' TERM; touch " + started +
                             "; while :; do sleep 0.05; done";
  Child run = background({"run", "fwd", "--", "sh", "-c", script});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  run.signal(SIGTERM);  // To dlock alone: it must pass it on.
  EXPECT_EQ(code_of(run.wait(20s)), 42) << log();
  EXPECT_EQ(read_file(got), "term\n");
  EXPECT_FALSE(held("fwd"));
}

TEST_F(Cli, LosingTheLockTerminatesTheCommandAndExits76) {
  const auto started = path("started");
  Child run = background(
      {"run", "--ttl", "1s", "lost", "--", "sh", "-c", "touch " + started + "; exec sleep 60"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  auto rel = dlock({"release", "--force", "lost"});
  EXPECT_EQ(rel.code, 0) << rel.err;
  EXPECT_NE(rel.err.find("release --force"), std::string::npos) << rel.err;
  EXPECT_EQ(code_of(run.wait(30s)), 76) << log();
  EXPECT_NE(log().find("was lost"), std::string::npos) << log();
}

TEST_F(Cli, CommandIgnoringSigtermIsKilledAfterKillAfter) {
  const auto started = path("started");
  Child run =
      background({"run", "--ttl", "1s", "--kill-after", "300ms", "stubborn", "--", "sh", "-c",
                  "trap '' TERM; touch " + started + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  ASSERT_EQ(dlock({"release", "--force", "stubborn"}).code, 0);
  EXPECT_EQ(code_of(run.wait(30s)), 76) << log();
  EXPECT_NE(log().find("SIGKILL"), std::string::npos) << log();
}

// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
bool exited(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && line.size() > close_paren + 2 &&
         line[close_paren + 2] == 'Z';
}

TEST_F(Cli, KillNineOfDlockRunFreesTheLockAtOnceAndEndsTheCommand) {
  const auto pid_file = path("cmd.pid");
  Child run = background({"run", "--ttl", "10m", "crash", "--", "sh", "-c",
                          "echo $$ > " + pid_file + "; exec sleep 60"});
  ASSERT_TRUE(wait_for([&] { return held("crash") && !read_file(pid_file).empty(); })) << log();
  const pid_t command = std::stoi(read_file(pid_file));
  run.signal(SIGKILL);
  run.wait(10s);
  // Its TTL is ten minutes: only the kernel's release of the dead holder lets this succeed.
  auto next = dlock({"run", "--wait", "20s", "crash", "--", "true"});
  EXPECT_EQ(next.code, 0) << next.err;
  // The command must not go on unprotected once its lock is gone.
  EXPECT_TRUE(wait_for([&] { return exited(command); }));
}

TEST_F(Cli, JsonOutputParses) {
  auto free_status = dlock({"status", "--json", "j/a"});
  ASSERT_EQ(free_status.code, 0);
  auto f = json::parse(free_status.out);
  EXPECT_EQ(f["name"], "j/a");
  EXPECT_EQ(f["held"], false);

  Child run = background({"run", "--metadata", "nightly", "j/a", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("j/a"); })) << log();
  auto s = json::parse(dlock({"status", "--json", "j/a"}).out);
  EXPECT_EQ(s["held"], true);
  EXPECT_EQ(s["fencing_token"], 1);
  EXPECT_GT(s["ttl_remaining_ms"].get<long>(), 0);
  EXPECT_EQ(s["owner"]["text"], "nightly");
  EXPECT_EQ(s["owner"]["pid"], run.pid());

  auto l = json::parse(dlock({"list", "--json", "j/"}).out);
  ASSERT_TRUE(l.is_array());
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["name"], "j/a");
  EXPECT_TRUE(json::parse(dlock({"list", "--json", "other/"}).out).empty());

  auto rel = dlock({"release", "--force", "--json", "j/a"});
  auto r = json::parse(rel.out);
  EXPECT_EQ(r["released"], true);
  EXPECT_EQ(r["previous"]["fencing_token"], 1);
  auto again = dlock({"release", "--force", "--json", "j/a"});
  EXPECT_EQ(again.code, 1);
  EXPECT_EQ(json::parse(again.out)["released"], false);
}

TEST_F(Cli, TextOutputIsReadable) {
  Child run = background({"run", "--metadata", "deploy", "t/a", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("t/a"); })) << log();
  auto s = dlock({"status", "t/a"});
  EXPECT_NE(s.out.find("held"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("deploy"), std::string::npos) << s.out;
  auto l = dlock({"list"});
  EXPECT_NE(l.out.find("t/a"), std::string::npos) << l.out;
  EXPECT_NE(dlock({"status", "t/free"}).out.find("free"), std::string::npos);
}

TEST_F(Cli, InterruptWhileWaitingExits130) {
  Child holder = background({"run", "wait", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("wait"); })) << log();
  Child waiter = background({"run", "wait", "--", "true"});
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(waiter.running());
  waiter.signal(SIGINT);
  EXPECT_EQ(code_of(waiter.wait(20s)), 128 + SIGINT) << log();
}

TEST_F(Cli, DemoRunsAndItsChecksPass) {
  auto r = dlock({"demo", "--workers", "3", "--iterations", "20"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("strictly increasing  OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("60 (expected 60)  OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("acquisitions:"), std::string::npos) << r.out;
}

}  // namespace
