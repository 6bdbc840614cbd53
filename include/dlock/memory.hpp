// dlock/memory.hpp: the in-process store, from a typed config.
#pragma once

#include <string>

#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Configuration of the in-process store (URL form: `memory://[name]`).
struct MemoryConfig {
  /// Empty: a store private to this `open`. Otherwise every `open` of the same name in the
  /// process shares one store while any of them is alive.
  std::string name{};
};

/// Opens an in-process store. Never blocks; throws nothing but `std::bad_alloc`.
DLOCK_API Store open(const MemoryConfig& config);

}  // namespace dlock
