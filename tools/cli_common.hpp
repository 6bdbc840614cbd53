// What every `dlock` subcommand shares: the global options, exit codes, choosing and opening
// the store, turning dlock errors into exit codes and messages, durations, environment
// variables.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "cli_log.hpp"
#include "dlock/dlock.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace dlock::cli {

/// The options every subcommand takes, before or after its name (`dlock --store URL run ...`
/// and `dlock run --store URL ...` are the same).
struct GlobalArgs {
  std::string store;                         ///< --store URL, $DLOCK_STORE.
  bool json = false;                         ///< --json, $DLOCK_JSON.
  int verbose = 0;                           ///< -v (repeatable), $DLOCK_VERBOSE (a count).
  std::string log_format = "text";           ///< --log-format text|json, $DLOCK_LOG_FORMAT.
  CLI::Option* log_format_option = nullptr;  ///< To tell an explicit --log-format.
};

/// Adds the global options to `app` (the subcommands inherit them through fallthrough).
void add_global_options(CLI::App& app, GlobalArgs& g);

/// Sets up the log for subcommand `command` from `g` (called first by each subcommand, once
/// every option is parsed). `run --json` means `--log-format json` unless that is given: the
/// command's stdout is CMD's, so JSON can only go to stderr.
void start_command(const GlobalArgs& g, const std::string& command);

/// Whether a usage error should be written as a JSON line (--log-format json or
/// $DLOCK_LOG_FORMAT=json), for a failed parse that may not have read the environment yet.
bool wants_json_log(const GlobalArgs& g);

/// The footer line that reminds a subcommand's --help of the global options.
extern const char* const kGlobalOptionsHelp;

/// Makes `opt` also read `$DLOCK_<NAME>` (shown in --help as "(Env:...)") and returns it.
CLI::Option* with_env(CLI::Option* opt, const std::string& name);

/// Reads a boolean environment variable as CLI11 reads a flag: unset or "" -> nullopt;
/// 1/true/yes/on -> true; 0/false/no/off -> false; anything else throws
/// `Error(invalid_argument)` naming the variable.
std::optional<bool> env_bool(const char* name);

/// Reads a string environment variable: unset or "" -> nullopt.
std::optional<std::string> env_string(const char* name);

/// Exit codes (sysexits.h where one fits), documented in every --help.
enum Exit : int {
  kOk = 0,
  kFalse = 1,         ///< A check failed (demo), nothing to release (release --force).
  kUsage = 64,        ///< EX_USAGE: bad arguments.
  kUnavailable = 69,  ///< EX_UNAVAILABLE: the store is unreachable or refused us.
  kSoftware = 70,     ///< EX_SOFTWARE: an unexpected error.
  kTempFail = 75,     ///< EX_TEMPFAIL: the lock was not acquired in time.
  kLockLost = 76,     ///< The lock was lost while the command ran.
  kCannotExec = 126,  ///< The command could not be executed.
  kNotFound = 127,    ///< The command was not found.
};

/// The exit-code section shared by the --help texts.
extern const char* const kExitCodesHelp;

/// The store URL: `flag` when given (from --store or $DLOCK_STORE), else the embedded store's
/// default directory.
std::string resolve_store_url(const std::string& flag);

/// Opens `url` for the CLI. Throws `Error(invalid_argument)` for memory:// (it cannot outlive
/// the process, so no other process could ever see the lock).
Store open_store(const std::string& url);

/// The exit code for an error (invalid_argument -> 64, unreachable/auth -> 69, timeout ->
/// 75, lock_lost -> 76, else 70).
int exit_code_for(const Error& e);

/// Logs `e` (text: "dlock: <what>"; JSON: its fields) and returns `exit_code_for(e)`.
int report(const Error& e);

/// The longest duration an option takes: a year.
inline constexpr std::chrono::milliseconds kMaxDurationArg = std::chrono::hours(24 * 365);

/// Parses "500ms", "10s", "2m", "1h" up to `kMaxDurationArg` (throws `Error(invalid_argument)`
/// naming `what`).
std::chrono::milliseconds parse_duration_arg(const std::string& text, const std::string& what);

/// "1.5s", "250ms", "2m03s", "1h02m" for people.
std::string human_duration(std::chrono::milliseconds d);

/// Who holds a lock, for people: "pid 42 on host, since 2026-01-01T00:00:00Z", or "a client
/// without dlock metadata" for a foreign holder (redis-py, etcdctl).
std::string owner_text(const OwnerInfo& owner);

/// "exclusive", "shared" or "3 of 5 permits".
std::string mode_text(const LockMode& mode);

}  // namespace dlock::cli
