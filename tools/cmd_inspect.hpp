// `dlock status`, `dlock list`, `dlock release --force`: look at locks and override them.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace dlock::cli {

struct GlobalArgs;

struct InspectArgs {
  std::string name;
  std::string prefix;
  bool force = false;
  bool watch = false;  ///< status/leader --watch: a line per change until interrupted.
};

/// Adds the three subcommands to `app`; each sets `*exit_code` when it runs.
void add_inspect_commands(CLI::App& app, const GlobalArgs& global, InspectArgs& args,
                          int* exit_code);

}  // namespace dlock::cli
