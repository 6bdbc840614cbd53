// `dlock run NAME -- CMD [ARGS...]`: run a command while holding a lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace dlock::cli {

struct GlobalArgs;

struct RunArgs {
  std::string name;
  std::string ttl = "30s";
  std::string wait;
  bool no_wait = false;
  CLI::Option* wait_option = nullptr;     ///< To tell --wait given on the command line.
  CLI::Option* no_wait_option = nullptr;  ///< Likewise --no-wait.
  std::string kill_after = "10s";
  std::string on_risk = "ignore";  ///< What to do with CMD when the lock is at risk.
  std::string metadata;
  std::string metrics_file;  ///< --metrics-file: where to write the metrics at the end.
  std::vector<std::string> command;
  bool shared = false;      ///< run --shared: the read side of a read-write lock.
  std::uint32_t limit = 0;  ///< run --limit N: one of N permits (0: a mutex).
  bool elect = false;       ///< `dlock elect`: campaign instead of lock.
  std::string value;        ///< elect --value: the published value.
  bool restart = false;     ///< elect --restart: campaign again after CMD exits.
};

/// Adds `elect` to `app`; sets `*exit_code` when it runs.
void add_elect_command(CLI::App& app, const GlobalArgs& global, RunArgs& args, int* exit_code);

/// Adds `run` to `app`; sets `*exit_code` when it runs.
void add_run_command(CLI::App& app, const GlobalArgs& global, RunArgs& args, int* exit_code);

}  // namespace dlock::cli
