// The fixture of the `dlock` end-to-end tests: runs the built binary as a user would, each
// test with its own embedded store directory (DLOCK_STORE), and cleans up what it started.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

extern char** environ;

namespace dlock::test {

inline const std::string kDlock = DLOCK_CLI_PATH;

struct Result {
  int code = -1;  ///< Exit code, or 128+N when killed by signal N.
  std::string out, err;
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = "file://" + (dir_.path() / "store").string();
    ::setenv("DLOCK_STORE", store_.c_str(), 1);  // Every dlock started below uses it.
  }
  void TearDown() override {
    for (pid_t g : groups_) ::kill(-g, SIGKILL);  // Leftover commands of killed dlock runs.
    ::unsetenv("DLOCK_STORE");
    for (const auto& name : env_set_) ::unsetenv(name.c_str());
  }

  // Sets an environment variable for every dlock started afterwards in this test.
  void set_env(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    env_set_.push_back(name);
  }

  // Runs dlock to completion with separate stdout and stderr.
  Result dlock(std::vector<std::string> args) {
    args.insert(args.begin(), kDlock);
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
    Result r;
    if (::posix_spawn(&pid, kDlock.c_str(), &fa, nullptr, argv.data(), environ) == 0) {
      int st = 0;
      ::waitpid(pid, &st, 0);
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    posix_spawn_file_actions_destroy(&fa);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
  }

  // Starts dlock in the background (own process group; stdout and stderr to a log, by default
  // the one `log()` reads).
  Child background(std::vector<std::string> args, const std::string& log_name = "background.log") {
    args.insert(args.begin(), kDlock);
    Child c(args, (dir_.path() / log_name).string());
    groups_.push_back(c.pid());
    return c;
  }

  bool wait_for(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  bool held(const std::string& name) {
    auto r = dlock({"status", "--json", name});
    return r.code == 0 && nlohmann::json::parse(r.out, nullptr, false).value("held", false);
  }

  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string log(const std::string& name = "background.log") const {
    return read_file(dir_.path() / name);
  }

  static int code_of(int wstatus) {
    if (wstatus < 0) return -1;
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  }

  TempDir dir_{"dlock-cli-test"};
  std::string store_;
  std::vector<pid_t> groups_;
  std::vector<std::string> env_set_;
  int seq_ = 0;
};

}  // namespace dlock::test
