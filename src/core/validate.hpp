// Argument checks shared by every store: keys, TTLs, options. Each throws
// `Error(errc::invalid_argument)` naming the store, key and step.
#pragma once

#include <chrono>
#include <string_view>

#include "dlock/options.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

/// Rejects an empty key, one longer than the store allows, or (for stores without binary
/// keys) one with NUL or control bytes.
void validate_key(std::string_view key, const Capabilities& caps, std::string_view store,
                  std::string_view step);

/// Rejects TTL <= 0 or > kMaxTtl; returns the TTL rounded up to the store's minimum.
std::chrono::milliseconds validate_ttl(std::chrono::milliseconds ttl, const Capabilities& caps,
                                       std::string_view store, std::string_view key,
                                       std::string_view step);

/// Checks wait and retry policy, renew interval and metadata size.
void validate_options(const LockOptions& opts, std::string_view store, std::string_view key);

}  // namespace dlock::detail
