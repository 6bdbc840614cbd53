// What `dlock` says about itself on stderr: errors and warnings always, events (acquired,
// renewed, released, lost, ...) with -v, details and the library's own records (dlock/log.hpp) with
// -vv; as text lines for people or as JSON lines (`--log-format json`) for log collectors. One
// process-wide instance, set up by main before a subcommand runs. Lines are written whole (one
// write per line), so lines from the renewal-watching loop and from loss callbacks never interleave
// mid-line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace dlock {
class Error;
}

namespace dlock::cli {

/// How lines are written.
enum class LogFormat { text, json };

/// How important a line is. error/warning/notice lines are always written; info needs -v,
/// debug needs -vv.
enum class LogLevel { error, warning, notice, info, debug };

/// One structured field of a line (JSON only; the text form is the message itself).
using LogValue = std::variant<std::string, std::int64_t, std::uint64_t, double, bool>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

/// Sets the process-wide format, verbosity (the number of -v) and the subcommand name shown
/// in each line. Call once, before any thread logs.
void configure_log(LogFormat format, int verbosity, std::string command);

/// Whether a line of `level` would be written.
bool log_enabled(LogLevel level);

/// Writes one line when `log_enabled(level)`. `event` is a short machine name ("acquired"),
/// `message` the sentence for people; text lines read "dlock <command>: <message>", JSON lines
/// are {"time","level","subcommand","pid","event","message", fields...}. Never throws.
void log_line(LogLevel level, std::string_view event, const std::string& message,
              const LogFields& fields = {});

/// Writes an error from the library (text: its `what()`; JSON: code, store, key, step, detail
/// and `exit_code`) and returns `exit_code`.
int log_error(const Error& e, int exit_code);

}  // namespace dlock::cli
