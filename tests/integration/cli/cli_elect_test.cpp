// End-to-end tests of `dlock elect`, `dlock leader` and `dlock status --watch` on the embedded
// store: one leader at a time, a standby that takes over with a larger term, the published
// value, a line per change.
#include <fstream>

#include "cli_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using dlock::test::Child;
using dlock::test::Cli;
using dlock::test::read_file;
using nlohmann::json;

TEST_F(Cli, ElectRunsTheCommandOnlyWhileLeadingAndAStandbyTakesOver) {
  const auto a_file = path("a.env"), b_file = path("b.env"), a_go = path("a.go");
  // The leader writes its environment, then runs until told to stop.
  auto leader = background({"elect", "--value", "alpha", "sched", "--", "sh", "-c",
                            "echo \"$DLOCK_TERM|$DLOCK_LEADER_VALUE|$DLOCK_FENCING_TOKEN\" > " +
                                a_file + "; while [ ! -f " + a_go + " ]; do sleep 0.05; done"},
                           "a.log");
  ASSERT_TRUE(wait_for([&] { return !read_file(a_file).empty(); })) << log("a.log");
  auto standby = background({"elect", "--value", "beta", "sched", "--", "sh", "-c",
                             "echo \"$DLOCK_TERM|$DLOCK_LEADER_VALUE\" > " + b_file},
                            "b.log");
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(read_file(b_file).empty()) << "two leaders at once";

  auto shown = dlock({"leader", "--json", "sched"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  auto j = json::parse(shown.out);
  EXPECT_EQ(j["leader"]["value"], "alpha");
  const std::string a_env = read_file(a_file);
  const auto a_term = std::stoull(a_env.substr(0, a_env.find('|')));
  EXPECT_EQ(j["leader"]["term"], a_term);
  EXPECT_EQ(a_env, std::to_string(a_term) + "|alpha|" + std::to_string(a_term) + "\n");

  std::ofstream(a_go) << "go\n";  // The leader's command ends: it resigns.
  EXPECT_EQ(code_of(leader.wait(10s)), 0) << log("a.log");
  EXPECT_EQ(code_of(standby.wait(10s)), 0) << log("b.log");
  const std::string b_env = read_file(b_file);
  ASSERT_FALSE(b_env.empty());
  EXPECT_GT(std::stoull(b_env.substr(0, b_env.find('|'))), a_term);  // Terms increase.
  EXPECT_NE(b_env.find("|beta"), std::string::npos) << b_env;
  EXPECT_NE(dlock({"leader", "sched"}).out.find("no leader"), std::string::npos);
}

TEST_F(Cli, AKilledLeadersStandbyTakesOverAtOnceOnTheEmbeddedStore) {
  const auto b_file = path("b.env");
  auto leader = background({"elect", "--value", "alpha", "svc", "--", "sleep", "60"}, "a.log");
  ASSERT_TRUE(wait_for([&] { return held("svc"); })) << log("a.log");
  auto standby = background({"elect", "--value", "beta", "svc", "--", "sh", "-c",
                             "echo \"$DLOCK_LEADER_VALUE\" > " + b_file},
                            "b.log");
  std::this_thread::sleep_for(200ms);
  const auto killed = std::chrono::steady_clock::now();
  leader.signal(SIGKILL);  // The kernel frees its lock (and kills its command).
  ASSERT_TRUE(wait_for([&] { return read_file(b_file) == "beta\n"; }, 10s)) << log("b.log");
  const auto took = std::chrono::steady_clock::now() - killed;
  std::printf(
      "[ elect    ] file: the standby took over %lld ms after the leader's SIGKILL\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_EQ(code_of(standby.wait(10s)), 0) << log("b.log");
}

TEST_F(Cli, ElectRestartCampaignsAgainAfterTheCommandExits) {
  const auto runs = path("runs");
  auto sup = background(
      {"elect", "--restart", "single", "--", "sh", "-c", "echo run >> " + runs + "; sleep 0.1"});
  EXPECT_TRUE(wait_for([&] {
    std::ifstream in(runs);
    return std::count(std::istreambuf_iterator<char>(in), {}, '\n') >= 3;
  })) << log();
  sup.signal(SIGTERM);  // Ends the supervision.
  EXPECT_GE(code_of(sup.wait(10s)), 0) << log();
}

TEST_F(Cli, StatusWatchPrintsALinePerChange) {
  auto watch = background({"status", "--watch", "--json", "w"}, "watch.log");
  ASSERT_TRUE(wait_for([&] { return log("watch.log").find("snapshot") != std::string::npos; }))
      << log("watch.log");
  ASSERT_EQ(dlock({"run", "--metadata", "tagged", "w", "--", "sleep", "0.3"}).code, 0);
  ASSERT_TRUE(wait_for([&] { return log("watch.log").find("released") != std::string::npos; }))
      << log("watch.log");
  watch.signal(SIGTERM);
  watch.wait(5s);
  std::vector<json> lines;
  std::istringstream in(log("watch.log"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  ASSERT_GE(lines.size(), 3u) << log("watch.log");
  EXPECT_EQ(lines[0]["event"], "snapshot");
  EXPECT_EQ(lines[0]["state"]["held"], false);
  EXPECT_EQ(lines[1]["event"], "acquired");
  EXPECT_EQ(lines[1]["holder"]["owner"]["text"], "tagged");
  EXPECT_EQ(lines[2]["event"], "released");
  EXPECT_EQ(lines[2]["holder"]["fencing_token"], lines[1]["holder"]["fencing_token"]);
}

}  // namespace
