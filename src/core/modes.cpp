#include "core/modes.hpp"

namespace dlock::detail {

bool compatible(const LockMode& want, const std::vector<LockMode>& held) {
  if (held.empty()) return true;
  switch (want.kind) {
    case LockMode::Kind::exclusive:
      return false;
    case LockMode::Kind::shared:
      for (const auto& h : held) {
        if (h.kind != LockMode::Kind::shared) return false;
      }
      return true;
    case LockMode::Kind::permits: {
      std::uint64_t used = 0;
      for (const auto& h : held) {
        if (h.kind != LockMode::Kind::permits || h.limit != want.limit) return false;
        used += h.count;
      }
      return used + want.count <= want.limit;
    }
  }
  return false;
}

std::optional<std::string> limit_conflict(const LockMode& want, std::uint32_t limit) {
  if (want.kind != LockMode::Kind::permits || limit == 0 || limit == want.limit) {
    return std::nullopt;
  }
  return "the semaphore has " + std::to_string(limit) + " permits, this acquisition says " +
         std::to_string(want.limit);
}

}  // namespace dlock::detail
