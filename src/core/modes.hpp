// When grants of different modes may hold one lock together: the rule every store that keeps
// its holders in one place (memory, file) applies, written once.
//
//  - exclusive holds alone;
//  - shared grants hold together (the read side of a read-write lock);
//  - permit grants hold together while their counts add up to at most the semaphore's limit.
// Modes of different kinds never hold together (a name is a mutex, a read-write lock or a
// semaphore, not two of them at once).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dlock/options.hpp"

namespace dlock::detail {

/// Whether a grant of `want` may join a lock held by grants of the modes `held`.
bool compatible(const LockMode& want, const std::vector<LockMode>& held);

/// Why `want` does not fit a semaphore whose holders or waiters use `limit` (nullopt: it
/// fits), e.g. "the semaphore has 5 permits, this acquisition says 3".
std::optional<std::string> limit_conflict(const LockMode& want, std::uint32_t limit);

}  // namespace dlock::detail
