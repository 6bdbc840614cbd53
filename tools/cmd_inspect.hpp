// `dlock status`, `dlock list`, `dlock release --force`: look at locks and override them.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace dlock::cli {

struct InspectArgs {
  std::string store;
  std::string name;
  std::string prefix;
  bool json = false;
  bool force = false;
};

/// Adds the three subcommands to `app`; each sets `*exit_code` when it runs.
void add_inspect_commands(CLI::App& app, InspectArgs& args, int* exit_code);

}  // namespace dlock::cli
