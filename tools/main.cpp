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
  // Subcommands created below inherit this: an option a subcommand does not know goes to
  // `dlock` itself, so the global options may follow the subcommand's name.
  app.fallthrough();
  GlobalArgs global;
  add_global_options(app, global);
  app.footer(
      "Global options may come before or after the subcommand. Every option can also be set "
      "with the environment variable shown beside it (Env:...); the command line wins.\n"
      "Stores (--store URL or $DLOCK_STORE): file:///dir (default: the embedded store in "
      "$XDG_RUNTIME_DIR/dlock or /tmp/dlock-<uid>, for one host), redis://[user:pass@]host:port, "
      "rediss://, redis+sentinel://, redis+cluster://, etcd://host:port, etcds://, etcd+txn://, "
      "... (memory:// is refused: it cannot outlive the dlock process).\n"
      "Durations: 500ms, 10s, 2m, 1h.\n" +
      std::string(kExitCodesHelp) + "\nRun `dlock SUBCOMMAND --help` for details; `man dlock`.");

  int exit_code = kOk;
  RunArgs run, elect;
  InspectArgs inspect;
  DemoArgs demo;
  add_run_command(app, global, run, &exit_code);
  add_elect_command(app, global, elect, &exit_code);
  add_inspect_commands(app, global, inspect, &exit_code);
  add_demo_commands(app, global, demo, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version.
    if (wants_json_log(global)) {
      configure_log(LogFormat::json, 0, "");
      log_line(LogLevel::error, "usage", e.what(), {{"exit_code", std::int64_t{kUsage}}});
      return kUsage;
    }
    app.exit(e);
    return kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dlock: unexpected error: %s\n", e.what());
    return kSoftware;
  }
  return exit_code;
}
