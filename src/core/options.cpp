#include "dlock/options.hpp"

namespace dlock {

std::string_view to_string(LockMode::Kind kind) noexcept {
  switch (kind) {
    case LockMode::Kind::exclusive:
      return "exclusive";
    case LockMode::Kind::shared:
      return "shared";
    case LockMode::Kind::permits:
      return "permits";
  }
  return "unknown";
}

std::string_view to_string(LossReason reason) noexcept {
  switch (reason) {
    case LossReason::rejected:
      return "rejected";
    case LossReason::expired:
      return "expired";
    case LossReason::store_reported:
      return "store_reported";
  }
  return "unknown";
}

}  // namespace dlock
