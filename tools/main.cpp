// The `dlock` command: run a command under a lock, inspect and override locks, demo.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli_common.hpp"
#include "cmd_demo.hpp"
#include "cmd_inspect.hpp"
#include "cmd_run.hpp"

int main(int argc, char** argv) {
  using namespace dlock::cli;
  CLI::App app{
      "dlock: run commands under a lock shared by processes and machines; inspect "
      "and override locks.",
      "dlock"};
  app.set_version_flag("--version", "dlock " DLOCK_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Stores (--store URL or $DLOCK_STORE): file:///dir (default: the embedded store in "
      "$XDG_RUNTIME_DIR/dlock or /tmp/dlock-<uid>, for one host), redis://[user:pass@]host:port, "
      "etcd://host:port, ... (memory:// is refused: it cannot outlive the dlock process).\n"
      "Durations: 500ms, 10s, 2m, 1h.\n" +
      std::string(kExitCodesHelp) + "\nRun `dlock SUBCOMMAND --help` for details.");

  int exit_code = kOk;
  RunArgs run;
  InspectArgs inspect;
  DemoArgs demo;
  add_run_command(app, run, &exit_code);
  add_inspect_commands(app, inspect, &exit_code);
  add_demo_commands(app, demo, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dlock: unexpected error: %s\n", e.what());
    return kSoftware;
  }
  return exit_code;
}
