// The in-process store `memory://[name]`: full lock semantics inside one process (TTL
// expiry, fencing tokens, owner checks, change notification, lock info), for users' unit
// tests and single-process programs. A named store is shared by every `open` of that name
// while any of them is alive; an unnamed one is private to its `open`.
#pragma once

#include <memory>
#include <string>

#include "core/backend.hpp"

namespace dlock::detail {

/// Creates (or joins, for a name) an in-process store.
std::shared_ptr<Backend> make_memory_backend(const std::string& name);

}  // namespace dlock::detail
