// End-to-end tests of the `dlock` conventions: global options before or after the
// subcommand, every option from its DLOCK_<NAME> environment variable (the command line
// wins), and what -v / --log-format print on stderr.
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cli_fixture.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using dlock::test::Child;
using dlock::test::Cli;
using dlock::test::read_file;
using nlohmann::json;

// Every stderr line as JSON; a line that does not parse fails the test.
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not a JSON line: " << line;
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// The events of `lines`, in order.
std::vector<std::string> events(const std::vector<json>& lines) {
  std::vector<std::string> out;
  for (const auto& j : lines) out.push_back(j.value("event", ""));
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(Cli, GlobalOptionsWorkBeforeAndAfterTheSubcommand) {
  const std::string other = "file://" + path("other");
  const auto file = path("store.txt");
  const std::string script = "echo \"$DLOCK_STORE\" > " + file;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--store", other, "run", "g", "--", "sh", "-c", script},
           {"run", "--store", other, "g", "--", "sh", "-c", script},
           {"run", "g", "--store", other, "--", "sh", "-c", script}}) {
    fs::remove(file);
    auto r = dlock(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_file(file), other + "\n") << args[0] << " " << args[1];  // Not DLOCK_STORE.
  }
  // Options after `--` belong to the command.
  auto after = dlock({"run", "g", "--", "sh", "-c", "echo \"$@\"", "sh", "--store", "x", "-v"});
  EXPECT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(after.out, "--store x -v\n");
  EXPECT_EQ(after.err, "");  // -v after `--` is not dlock's.

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--json", "status", "g"}, {"status", "--json", "g"}, {"status", "g", "--json"}}) {
    auto r = dlock(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["name"], "g");
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-v", "status", "g"}, {"status", "-v", "g"}, {"--verbose", "list"}}) {
    auto r = dlock(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(" on " + store_ + " in "), std::string::npos) << r.err;
  }
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--log-format", "json", "-v", "status", "g"},
                                             {"status", "g", "-v", "--log-format=json"}}) {
    auto r = dlock(args);
    ASSERT_EQ(r.code, 0) << r.err;
    auto lines = json_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0]["event"], "inspected");
    EXPECT_EQ(lines[0]["key"], "g");
  }
  EXPECT_EQ(dlock({"--log-format", "xml", "status", "g"}).code, 64);
}

TEST_F(Cli, HelpNamesTheEnvironmentVariableOfEveryOption) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
      {"", {"DLOCK_STORE", "DLOCK_JSON", "DLOCK_VERBOSE", "DLOCK_LOG_FORMAT"}},
      {"run",
       {"DLOCK_TTL", "DLOCK_WAIT", "DLOCK_NO_WAIT", "DLOCK_KILL_AFTER", "DLOCK_METADATA",
        "DLOCK_METRICS_FILE"}},
      {"demo", {"DLOCK_DEMO_WORKERS", "DLOCK_DEMO_ITERATIONS", "DLOCK_DEMO_NAME", "DLOCK_TTL"}},
  };
  for (const auto& [sub, vars] : expected) {
    auto help = sub.empty() ? dlock({"--help"}) : dlock({sub, "--help"});
    ASSERT_EQ(help.code, 0);
    for (const auto& v : vars) EXPECT_NE(help.out.find("(Env:" + v + ")"), std::string::npos) << v;
  }
  for (std::string sub : {"run", "status", "list", "release", "demo"}) {
    EXPECT_NE(dlock({sub, "--help"}).out.find("Global options"), std::string::npos) << sub;
  }
}

TEST_F(Cli, RunOptionsComeFromTheEnvironment) {
  set_env("DLOCK_TTL", "1h");
  set_env("DLOCK_METADATA", "from the environment");
  Child holder = background({"run", "env/held", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("env/held"); })) << log();
  auto s = json::parse(dlock({"status", "--json", "env/held"}).out);
  EXPECT_GT(s["ttl_remaining_ms"].get<long>(), 30 * 60 * 1000);  // 1h, not the default 30s.
  EXPECT_EQ(s["owner"]["text"], "from the environment");

  set_env("DLOCK_NO_WAIT", "1");
  auto no_wait = dlock({"run", "env/held", "--", "true"});
  EXPECT_EQ(no_wait.code, 75);
  EXPECT_NE(no_wait.err.find("(--no-wait)"), std::string::npos) << no_wait.err;
  ::unsetenv("DLOCK_NO_WAIT");
  set_env("DLOCK_WAIT", "200ms");
  auto bounded = dlock({"run", "env/held", "--", "true"});
  EXPECT_EQ(bounded.code, 75);
  EXPECT_NE(bounded.err.find("within 200ms"), std::string::npos) << bounded.err;
  set_env("DLOCK_NO_WAIT", "yes");
  EXPECT_EQ(dlock({"run", "env/held", "--", "true"}).code, 64);  // Both set in one place.
  set_env("DLOCK_NO_WAIT", "maybe");
  EXPECT_EQ(dlock({"run", "--wait", "1ms", "env/x", "--", "true"}).code, 0);  // CLI decides.
  EXPECT_EQ(dlock({"run", "env/x", "--", "true"}).code, 64);                  // Bad value.
  ::unsetenv("DLOCK_NO_WAIT");
  ::unsetenv("DLOCK_WAIT");
  set_env("DLOCK_TTL", "soon");
  EXPECT_EQ(dlock({"run", "env/x", "--", "true"}).code, 64);
  EXPECT_EQ(dlock({"run", "--ttl", "5s", "env/x", "--", "true"}).code, 0);  // CLI wins.
}

TEST_F(Cli, TheCommandLineBeatsTheEnvironmentAcrossWaitAndNoWait) {
  // The holder frees the lock soon; a waiter told --wait on the command line must wait for it
  // although DLOCK_NO_WAIT says not to wait at all.
  const auto started = path("started");
  Child holder = background({"run", "short", "--", "sh", "-c", "touch " + started + "; sleep 0.5"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  set_env("DLOCK_NO_WAIT", "1");
  auto waited = dlock({"run", "--wait", "20s", "short", "--", "true"});
  EXPECT_EQ(waited.code, 0) << waited.err;
  EXPECT_EQ(code_of(holder.wait(20s)), 0);
}

TEST_F(Cli, KillAfterComesFromTheEnvironment) {
  set_env("DLOCK_KILL_AFTER", "300ms");
  const auto started = path("started");
  Child run = background({"run", "--ttl", "1s", "stubborn", "--", "sh", "-c",
                          "trap '' TERM; touch " + started + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log();
  ASSERT_EQ(dlock({"release", "--force", "stubborn"}).code, 0);
  EXPECT_EQ(code_of(run.wait(30s)), 76) << log();
  EXPECT_NE(log().find("SIGKILL in 300ms"), std::string::npos) << log();
}

TEST_F(Cli, GlobalOptionsComeFromTheEnvironment) {
  set_env("DLOCK_JSON", "1");
  auto s = dlock({"status", "e"});
  EXPECT_EQ(json::parse(s.out, nullptr, false).value("name", ""), "e") << s.out;
  ::unsetenv("DLOCK_JSON");
  set_env("DLOCK_VERBOSE", "1");
  auto v = dlock({"run", "e", "--", "true"});
  EXPECT_NE(v.err.find("acquired lock \"e\""), std::string::npos) << v.err;
  set_env("DLOCK_LOG_FORMAT", "json");
  auto j = dlock({"run", "e", "--", "true"});
  EXPECT_TRUE(contains(events(json_lines(j.err)), "released")) << j.err;
  set_env("DLOCK_LOG_FORMAT", "xml");
  EXPECT_EQ(dlock({"status", "e"}).code, 64);
  EXPECT_EQ(dlock({"--log-format", "text", "status", "e"}).code, 0);  // CLI wins.
}

TEST_F(Cli, DemoOptionsComeFromTheEnvironment) {
  set_env("DLOCK_DEMO_WORKERS", "2");
  set_env("DLOCK_DEMO_ITERATIONS", "3");
  set_env("DLOCK_DEMO_NAME", "env-demo");
  auto r = dlock({"demo"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 worker processes x 3 iterations on lock \"env-demo\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("6 (expected 6)  OK"), std::string::npos) << r.out;
  auto j = dlock({"demo", "--json", "--iterations", "4"});  // The command line wins.
  ASSERT_EQ(j.code, 0) << j.err;
  auto summary = json::parse(j.out);
  EXPECT_EQ(summary["acquisitions"], 8);
  EXPECT_EQ(summary["counter"]["exact"], true);
  EXPECT_EQ(summary["fencing_tokens"]["strictly_increasing"], true);
  EXPECT_EQ(summary["ok"], true);
  set_env("DLOCK_DEMO_WORKERS", "many");
  EXPECT_EQ(dlock({"demo"}).code, 64);
}

TEST_F(Cli, QuietWithoutVerbose) {
  // A TTL far longer than the command: no renewal is due, so no warning can be either.
  auto r = dlock({"run", "--ttl", "1m", "q", "--", "sleep", "0.3"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
}

TEST_F(Cli, VerboseRunSaysWhatItDoesAsText) {
  auto r = dlock({"-v", "run", "--ttl", "300ms", "v", "--", "sleep", "0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* what :
       {"dlock run: acquiring lock \"v\"",
        "dlock run: acquired lock \"v\" "
        "(fencing token 1",
        "dlock run: started sleep", "dlock run: renewed lock \"v\"",
        "dlock run: sleep exited with status 0", "dlock run: released lock \"v\""}) {
    EXPECT_NE(r.err.find(what), std::string::npos) << what << "\n" << r.err;
  }
}

TEST_F(Cli, VerboseRunWritesJsonLines) {
  auto r =
      dlock({"run", "--log-format", "json", "-v", "--ttl", "300ms", "vj", "--", "sleep", "0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = json_lines(r.err);
  auto ev = events(lines);
  // In order: acquiring, acquired, started, renewed (at least once), exited, released.
  std::vector<std::string> order = {"acquiring", "acquired", "started",
                                    "renewed",   "exited",   "released"};
  auto at = ev.begin();
  for (const auto& e : order) {
    at = std::find(at, ev.end(), e);
    ASSERT_NE(at, ev.end()) << e << " missing or out of order in\n" << r.err;
  }
  for (const auto& j : lines) {
    EXPECT_EQ(j["subcommand"], "run");
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << j;
    if (j["event"] == "acquired" || j["event"] == "renewed" || j["event"] == "released") {
      EXPECT_EQ(j["key"], "vj");
      EXPECT_EQ(j["store"], store_);
      EXPECT_EQ(j["fencing_token"], 1);
    }
    if (j["event"] == "renewed") {
      EXPECT_GT(j["valid_for_ms"].get<long>(), 0);
    }
  }
  // `run --json` is `--log-format json`: run's stdout is the command's.
  auto as_json = dlock({"run", "--json", "-v", "vj", "--", "echo", "out"});
  EXPECT_EQ(as_json.out, "out\n");
  EXPECT_TRUE(contains(events(json_lines(as_json.err)), "acquired")) << as_json.err;
}

TEST_F(Cli, VerboseRunReportsTheLossAsJson) {
  const auto started = path("started");
  Child run = background({"-v", "--log-format", "json", "run", "--ttl", "1s", "vl", "--", "sh",
                          "-c", "touch " + started + "; exec sleep 60"},
                         "run.log");
  ASSERT_TRUE(wait_for([&] { return fs::exists(started); })) << log("run.log");
  ASSERT_EQ(dlock({"release", "--force", "vl"}).code, 0);
  EXPECT_EQ(code_of(run.wait(30s)), 76) << log("run.log");
  auto lines = json_lines(log("run.log"));
  auto lost =
      std::find_if(lines.begin(), lines.end(), [](const json& j) { return j["event"] == "lost"; });
  ASSERT_NE(lost, lines.end()) << log("run.log");
  EXPECT_EQ((*lost)["level"], "warning");
  EXPECT_EQ((*lost)["reason"], "rejected");
  EXPECT_EQ((*lost)["key"], "vl");
}

TEST_F(Cli, DoubleVerboseAddsTheLibrarysOwnRecords) {
  auto r =
      dlock({"-vv", "--log-format", "json", "run", "--ttl", "300ms", "vv", "--", "sleep", "0.3"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> library;
  for (const auto& j : json_lines(r.err)) {
    if (j["event"] != "library") continue;
    EXPECT_EQ(j["key"], "vv") << j;
    EXPECT_TRUE(j.contains("library_level") && j.contains("store")) << j;
    library.push_back(j["message"]);
  }
  for (std::string m : {"acquired", "renewed", "released"}) {
    EXPECT_TRUE(contains(library, m)) << m << " missing in\n" << r.err;
  }
  auto one = dlock({"-v", "run", "--ttl", "300ms", "v1", "--", "true"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.err.find("library:"), std::string::npos) << one.err;  // -v: the CLI's lines only.
}

TEST_F(Cli, MetricsFileHasTheWaitAndHoldHistograms) {
  const auto file = path("metrics.prom");
  auto r = dlock({"run", "--metrics-file", file, "mf", "--", "sleep", "0.2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = read_file(file);
  EXPECT_NE(text.find("# TYPE dlock_hold_seconds histogram"), std::string::npos) << text;
  EXPECT_NE(text.find("dlock_hold_seconds_count{lock=\"mf\",store=\"file\"} 1\n"),
            std::string::npos)
      << text;
  // Held at least the command's 0.2 s: nothing at or under 0.1 s.
  EXPECT_NE(text.find("dlock_hold_seconds_bucket{lock=\"mf\",store=\"file\",le=\"0.1\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dlock_wait_seconds_count{lock=\"mf\",store=\"file\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dlock_acquisitions_total{lock=\"mf\",store=\"file\"} 1\n"),
            std::string::npos)
      << text;
  // From the environment, and written also when the lock is not acquired (exit 75).
  Child holder = background({"run", "mf", "--", "sleep", "5"}, "holder.log");
  ASSERT_TRUE(wait_for([&] { return held("mf"); })) << log("holder.log");
  fs::remove(file);
  set_env("DLOCK_METRICS_FILE", file);
  auto busy = dlock({"run", "--no-wait", "mf", "--", "true"});
  EXPECT_EQ(busy.code, 75) << busy.err;
  const std::string after = read_file(file);
  EXPECT_NE(after.find("dlock_acquire_failures_total{lock=\"mf\",store=\"file\"} 1\n"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("dlock_hold_seconds_count{lock=\"mf\",store=\"file\"} 0\n"),
            std::string::npos)
      << after;
  ::unsetenv("DLOCK_METRICS_FILE");
  // An unwritable path is a warning, not a different exit code.
  auto bad = dlock({"run", "--metrics-file", path("no/such/dir/m.prom"), "other", "--", "true"});
  EXPECT_EQ(bad.code, 0) << bad.err;
  EXPECT_NE(bad.err.find("--metrics-file"), std::string::npos) << bad.err;
}

TEST_F(Cli, ErrorsAreJsonLinesWithLogFormatJson) {
  Child holder = background({"run", "busy", "--", "sleep", "30"});
  ASSERT_TRUE(wait_for([&] { return held("busy"); })) << log();
  auto miss = dlock({"--log-format", "json", "run", "--no-wait", "busy", "--", "true"});
  EXPECT_EQ(miss.code, 75);
  auto lines = json_lines(miss.err);
  ASSERT_EQ(lines.size(), 1u) << miss.err;
  EXPECT_EQ(lines[0]["event"], "not_acquired");
  EXPECT_EQ(lines[0]["exit_code"], 75);
  EXPECT_NE(lines[0]["message"].get<std::string>().find("held by pid"), std::string::npos);

  const auto open_dir = dir_.path() / "world-writable";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  auto unsafe =
      dlock({"status", "--log-format", "json", "--store", "file://" + open_dir.string(), "j"});
  EXPECT_EQ(unsafe.code, 69);
  lines = json_lines(unsafe.err);
  ASSERT_EQ(lines.size(), 1u) << unsafe.err;
  EXPECT_EQ(lines[0]["event"], "error");
  EXPECT_EQ(lines[0]["store"], "file");
  EXPECT_EQ(lines[0]["exit_code"], 69);

  auto usage = dlock({"--log-format", "json", "run", "--bogus", "j", "--", "true"});
  EXPECT_EQ(usage.code, 64);
  lines = json_lines(usage.err);
  ASSERT_EQ(lines.size(), 1u) << usage.err;
  EXPECT_EQ(lines[0]["event"], "usage");

  auto forced = dlock({"release", "--force", "--log-format", "json", "busy"});
  EXPECT_EQ(forced.code, 0);
  lines = json_lines(forced.err);
  ASSERT_EQ(lines.size(), 1u) << forced.err;  // The audit line is written without -v too.
  EXPECT_EQ(lines[0]["event"], "force_release");
  EXPECT_EQ(lines[0]["released"], true);
  EXPECT_EQ(lines[0]["uid"], static_cast<long>(::getuid()));
}

}  // namespace
