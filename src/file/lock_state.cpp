#include "file/lock_state.hpp"

#include <time.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace dlock::detail {

bool LockState::unexpired(std::int64_t now_ns) const {
  return !token.empty() && boot_id == current_boot_id() && deadline_ns > now_ns;
}

void LockState::clear() {
  token.clear();
  slot = 0;
  boot_id.clear();
  deadline_ns = 0;
  metadata.clear();
}

std::string serialize_state(const LockState& s) {
  nlohmann::json j = {{"v", 1},
                      {"fencing", s.fencing},
                      {"token", s.token},
                      {"slot", s.slot},
                      {"boot", s.boot_id},
                      {"deadline_ns", s.deadline_ns},
                      {"metadata", s.metadata}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::optional<LockState> parse_state(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  // Any shape may be on disk. Check each type first: `value()` throws on a wrong type, and
  // get<integer>() of a float converts without a range check (undefined behaviour).
  const auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer() || *v != 1) return std::nullopt;
  for (const char* k : {"fencing", "slot", "deadline_ns"}) {
    if (auto it = j.find(k); it == j.end() || !it->is_number_integer()) return std::nullopt;
  }
  try {
    LockState s;
    s.fencing = j.at("fencing").get<std::uint64_t>();
    s.token = j.at("token").get<std::string>();
    s.slot = j.at("slot").get<std::uint64_t>();
    s.boot_id = j.at("boot").get<std::string>();
    s.deadline_ns = j.at("deadline_ns").get<std::int64_t>();
    s.metadata = j.at("metadata").get<std::string>();
    return s;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

const std::string& current_boot_id() {
  static const std::string id = [] {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(in, s);
    return s.empty() ? std::string("unknown-boot") : s;
  }();
  return id;
}

}  // namespace dlock::detail
