// The library's side of dlock/log.hpp: where core reports an event. `enabled` is the cheap
// check callers make before building a record's fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>

#include "dlock/log.hpp"

namespace dlock::detail {

/// Whether a record at `level` would reach a sink (one relaxed atomic load).
bool log_enabled(LogLevel level) noexcept;

/// The fields every lock event has.
struct LockEvent {
  std::string_view store, key;
  std::uint64_t fencing = 0;  // 0: no grant (an acquisition that failed).
};

/// A lock event: `store`, `key`, `fencing` (when non-zero), `error` (when set), then `extra`.
void log_lock(LogLevel level, std::string_view message, const LockEvent& event,
              std::error_code error = {}, std::initializer_list<LogField> extra = {}) noexcept;

}  // namespace dlock::detail
