// What every `dlock` subcommand shares: exit codes, choosing and opening the store, turning
// dlock errors into exit codes and messages, durations.
#pragma once

#include <chrono>
#include <string>

#include "dlock/dlock.hpp"

namespace dlock::cli {

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

/// The store URL: `flag` when given, else $DLOCK_STORE, else the embedded store's default.
std::string resolve_store_url(const std::string& flag);

/// Opens `url` for the CLI. Throws `Error(invalid_argument)` for memory:// (it cannot outlive
/// the process, so no other process could ever see the lock).
Store open_store(const std::string& url);

/// The exit code for an error (invalid_argument -> 64, unreachable/auth -> 69, timeout ->
/// 75, lock_lost -> 76, else 70).
int exit_code_for(const Error& e);

/// Prints "dlock: <what>" to stderr and returns `exit_code_for(e)`.
int report(const Error& e);

/// Parses "500ms", "10s", "2m", "1h" (throws `Error(invalid_argument)` naming `what`).
std::chrono::milliseconds parse_duration_arg(const std::string& text, const std::string& what);

/// "1.5s", "250ms", "2m03s", "1h02m" for people.
std::string human_duration(std::chrono::milliseconds d);

}  // namespace dlock::cli
