// `dlock run NAME -- CMD [ARGS...]`: run a command while holding a lock.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dlock::cli {

struct RunArgs {
  std::string store;
  std::string name;
  std::string ttl = "30s";
  std::string wait;
  bool no_wait = false;
  std::string kill_after = "10s";
  std::string metadata;
  std::vector<std::string> command;
};

/// Adds `run` to `app`; sets `*exit_code` when it runs.
void add_run_command(CLI::App& app, RunArgs& args, int* exit_code);

}  // namespace dlock::cli
