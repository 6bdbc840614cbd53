#include "cli_common.hpp"

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "core/url.hpp"
#include "dlock/file.hpp"

namespace dlock::cli {

const char* const kExitCodesHelp =
    "Exit codes: 0 success; 64 usage error; 69 store unreachable or access refused; "
    "70 unexpected error; 75 lock not acquired in time; 76 lock lost while the command ran "
    "(run); otherwise the command's own status, or 128+N when it was killed by signal N (run).";

const char* const kGlobalOptionsHelp =
    "Global options (before or after the subcommand): --store URL (Env:DLOCK_STORE), --json "
    "(Env:DLOCK_JSON), -v,--verbose (Env:DLOCK_VERBOSE), --log-format text|json "
    "(Env:DLOCK_LOG_FORMAT); see `dlock --help`.";

void add_global_options(CLI::App& app, GlobalArgs& g) {
  with_env(app.add_option("--store", g.store,
                          "Store URL (default: the embedded file:// store, for one host)"),
           "DLOCK_STORE")
      ->type_name("URL");
  with_env(app.add_flag("--json", g.json,
                        "Print JSON for scripts: status, list, release and demo on stdout; run "
                        "(whose stdout is CMD's) writes its own messages as JSON lines"),
           "DLOCK_JSON");
  with_env(app.add_flag("-v,--verbose", g.verbose,
                        "Say what dlock does on stderr (acquired, renewed, released, lost, ...); "
                        "-vv adds details"),
           "DLOCK_VERBOSE");
  g.log_format_option =
      with_env(app.add_option("--log-format", g.log_format,
                              "Format of dlock's own lines on stderr: text (default) or json (one "
                              "JSON object per line)")
                   ->check(CLI::IsMember({"text", "json"})),
               "DLOCK_LOG_FORMAT");
  g.log_format_option->type_name("FORMAT");
}

void start_command(const GlobalArgs& g, const std::string& command) {
  bool json = g.log_format == "json";
  const bool explicit_format = g.log_format_option != nullptr && g.log_format_option->count() > 0;
  if (command == "run" && g.json && !explicit_format) json = true;
  configure_log(json ? LogFormat::json : LogFormat::text, g.verbose, command);
}

bool wants_json_log(const GlobalArgs& g) {
  return g.log_format == "json" || env_string("DLOCK_LOG_FORMAT").value_or("") == "json";
}

CLI::Option* with_env(CLI::Option* opt, const std::string& name) { return opt->envname(name); }

std::optional<std::string> env_string(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || v[0] == '\0') return std::nullopt;
  return std::string(v);
}

std::optional<bool> env_bool(const char* name) {
  auto v = env_string(name);
  if (!v) return std::nullopt;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  throw Error(errc::invalid_argument, "cli", "", "environment",
              std::string(name) + "=" + *v + ": expected 1/true/yes/on or 0/false/no/off");
}

std::string resolve_store_url(const std::string& flag) {
  if (!flag.empty()) return flag;
  return "file://" + default_file_store_dir().string();
}

Store open_store(const std::string& url) {
  if (url.rfind("memory:", 0) == 0) {
    throw Error(errc::invalid_argument, "memory", "", "open",
                "memory:// lives inside one process, so a lock taken by the dlock command "
                "would vanish when it exits; use the embedded store (file://, the default) or a "
                "server (redis://, etcd://)");
  }
  return open(url);
}

int exit_code_for(const Error& e) {
  switch (static_cast<errc>(e.code().value())) {
    case errc::invalid_argument:
      return kUsage;
    case errc::unavailable:
    case errc::auth_failed:
    case errc::not_found:  // The store's database (postgres://) does not exist.
    case errc::protocol_error:
    case errc::unsupported:
      return kUnavailable;
    case errc::timeout:
      return kTempFail;
    case errc::lock_lost:
      return kLockLost;
    default:
      return kSoftware;
  }
}

int report(const Error& e) { return log_error(e, exit_code_for(e)); }

std::chrono::milliseconds parse_duration_arg(const std::string& text, const std::string& what) {
  const auto d = detail::parse_duration(text, what);
  // Deadlines are steady-clock nanoseconds: far larger durations would overflow them.
  if (d > kMaxDurationArg) {
    throw Error(errc::invalid_argument, "cli", "", "options",
                what + ": '" + text + "' is longer than a year (to wait forever, omit --wait)");
  }
  return d;
}

std::string human_duration(std::chrono::milliseconds d) {
  const long long ms = d.count();
  char buf[64];
  if (ms < 0) return "unknown";
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60'000, (ms / 1000) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", ms / 3'600'000, (ms / 60'000) % 60);
  }
  return buf;
}

namespace {

std::string utc_time(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string owner_text(const OwnerInfo& owner) {
  if (owner.foreign()) return "a client without dlock metadata";
  std::string s;
  if (owner.pid != 0) s += "pid " + std::to_string(owner.pid);
  if (!owner.host.empty()) s += (s.empty() ? "" : " ") + std::string("on ") + owner.host;
  if (owner.acquired_unix_ms != 0) {
    s += (s.empty() ? "" : ", ") + std::string("since ") + utc_time(owner.acquired_unix_ms);
  }
  return s;
}

std::string mode_text(const LockMode& mode) {
  if (mode.kind != LockMode::Kind::permits) return std::string(to_string(mode.kind));
  return std::to_string(mode.count) + " of " + std::to_string(mode.limit) + " permits";
}

}  // namespace dlock::cli
