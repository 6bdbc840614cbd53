#include "core/metadata.hpp"

#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/fork_guard.hpp"

namespace dlock::detail {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

}  // namespace

std::string make_metadata(const std::string& text) {
  static const std::string host = host_name();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  nlohmann::json j = {{"host", host}, {"pid", static_cast<long long>(current_pid())}, {"t", now}};
  if (!text.empty()) j["text"] = text;
  // Replace invalid UTF-8 rather than throw: metadata is informational.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

OwnerInfo parse_metadata(const std::string& raw) {
  OwnerInfo o;
  if (raw.empty()) return o;
  auto j = nlohmann::json::parse(raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    o.text = raw;
    return o;
  }
  if (auto it = j.find("host"); it != j.end() && it->is_string()) o.host = *it;
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer()) o.pid = *it;
  if (auto it = j.find("text"); it != j.end() && it->is_string()) o.text = *it;
  if (auto it = j.find("t"); it != j.end() && it->is_number_integer()) o.acquired_unix_ms = *it;
  return o;
}

}  // namespace dlock::detail
