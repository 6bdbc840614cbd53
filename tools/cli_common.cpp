#include "cli_common.hpp"

#include <cstdio>
#include <cstdlib>

#include "core/url.hpp"
#include "dlock/file.hpp"

namespace dlock::cli {

const char* const kExitCodesHelp =
    "Exit codes: 0 success; 64 usage error; 69 store unreachable or access refused; "
    "70 unexpected error; 75 lock not acquired in time; 76 lock lost while the command ran "
    "(run); otherwise the command's own status, or 128+N when it was killed by signal N (run).";

std::string resolve_store_url(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("DLOCK_STORE"); env != nullptr && env[0] != '\0') return env;
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

int report(const Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return exit_code_for(e);
}

std::chrono::milliseconds parse_duration_arg(const std::string& text, const std::string& what) {
  return detail::parse_duration(text, what);
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

}  // namespace dlock::cli
