// The delay before the next acquire attempt, from the retry policy.
#pragma once

#include <chrono>

#include "dlock/options.hpp"

namespace dlock::detail {

/// The delay after failed attempt number `attempt` (1-based): grows per `policy.backoff`,
/// is capped at `policy.max_delay`, and has +-`policy.jitter` random spread (so waiters that
/// started together do not retry together). Never below 1 ms.
std::chrono::microseconds backoff_delay(const RetryPolicy& policy, int attempt);

}  // namespace dlock::detail
