#include "cli_log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "dlock/error.hpp"
#include "dlock/log.hpp"

namespace dlock::cli {
namespace {

struct LogConfig {
  LogFormat format = LogFormat::text;
  int verbosity = 0;
  std::string command;
};

LogConfig& config() {
  static LogConfig c;
  return c;
}

std::mutex& write_mutex() {
  static std::mutex m;
  return m;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warning:
      return "warning";
    case LogLevel::notice:
      return "notice";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "info";
}

// "2026-01-01T12:00:00.123Z".
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03lldZ", static_cast<long long>(ms % 1000));
  return buf;
}

// One write per line where the kernel allows, so concurrent lines stay whole.
void write_line(const std::string& line) {
  std::lock_guard lock(write_mutex());
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// Ordered, so that every line starts with time, level, subcommand, pid, event, message.
using Json = nlohmann::ordered_json;

std::string json_line(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Json json_head(LogLevel level, std::string_view event, const std::string& message) {
  return {{"time", utc_now()},
          {"level", level_name(level)},
          {"subcommand", config().command},
          {"pid", static_cast<long long>(::getpid())},
          {"event", event},
          {"message", message}};
}

// The enumerator's name ("timeout"), for scripts that match on it.
std::string code_name(const std::error_code& ec) {
  if (ec.category() != dlock::category()) return ec.message();
  switch (static_cast<errc>(ec.value())) {
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::timeout:
      return "timeout";
    case errc::cancelled:
      return "cancelled";
    case errc::not_held:
      return "not_held";
    case errc::lock_lost:
      return "lock_lost";
    case errc::unavailable:
      return "unavailable";
    case errc::auth_failed:
      return "auth_failed";
    case errc::protocol_error:
      return "protocol_error";
    case errc::closed:
      return "closed";
    case errc::not_found:
      return "not_found";
    case errc::already_exists:
      return "already_exists";
    case errc::unsupported:
      return "unsupported";
    case errc::would_deadlock:
      return "would_deadlock";
  }
  return ec.message();
}

// -vv: the library's own records (dlock/log.hpp) as debug lines with the event "library".
void forward_library_records(const ::dlock::LogRecord& r) {
  if (config().format == LogFormat::text) {
    log_line(LogLevel::debug, "library", "library: " + format_text(r));
    return;
  }
  LogFields fields = {{"library_level", std::string(to_string(r.level))}};
  for (const auto& f : r.fields) fields.emplace_back(std::string(f.name), f.value);
  log_line(LogLevel::debug, "library", std::string(r.message), fields);
}

}  // namespace

void configure_log(LogFormat format, int verbosity, std::string command) {
  config() = LogConfig{format, verbosity, std::move(command)};
  if (verbosity >= 2) set_log_sink(forward_library_records, ::dlock::LogLevel::debug);
}

bool log_enabled(LogLevel level) {
  switch (level) {
    case LogLevel::info:
      return config().verbosity >= 1;
    case LogLevel::debug:
      return config().verbosity >= 2;
    default:
      return true;
  }
}

void log_line(LogLevel level, std::string_view event, const std::string& message,
              const LogFields& fields) {
  if (!log_enabled(level)) return;
  try {
    if (config().format == LogFormat::text) {
      const std::string& cmd = config().command;
      write_line("dlock" + (cmd.empty() ? std::string() : " " + cmd) + ": " + message + "\n");
      return;
    }
    Json j = json_head(level, event, message);
    for (const auto& [key, value] : fields) {
      std::visit([&j, &key](const auto& v) { j[key] = v; }, value);
    }
    write_line(json_line(j));
  } catch (...) {  // Out of memory while logging: nothing sensible left to say.
  }
}

int log_error(const Error& e, int exit_code) {
  try {
    if (config().format == LogFormat::text) {
      write_line(std::string(e.what()) + "\n");
      return exit_code;
    }
    Json j = json_head(LogLevel::error, "error", e.what());
    j["code"] = code_name(e.code());
    j["store"] = e.store();
    j["key"] = e.key();
    j["step"] = e.step();
    j["detail"] = e.detail();
    j["exit_code"] = exit_code;
    write_line(json_line(j));
  } catch (...) {
  }
  return exit_code;
}

}  // namespace dlock::cli
