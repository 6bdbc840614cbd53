// dlock/watch.hpp: what happens to a lock, as a stream of events (`Store::watch`).
#pragma once

#include <cstdint>
#include <string_view>

#include "dlock/export.hpp"
#include "dlock/lock_info.hpp"

namespace dlock {

/// One change of a lock, as `Store::watch` reports it.
struct LockEvent {
  /// What changed.
  enum class Kind {
    snapshot,     ///< The state when the watch started (or resumed after a store outage).
    acquired,     ///< A grant began holding the lock (a new fencing token).
    released,     ///< A holder let go (or was force-released) before its TTL ended.
    expired,      ///< A holder's TTL ended without renewal.
    handed_over,  ///< One holder went and the next came without the lock being seen free.
    changed,      ///< Same holders, other data (a leader proclaimed a new value, waiters).
  };
  /// What changed.
  Kind kind = Kind::snapshot;
  /// The holder the event is about (the new one for `acquired`/`handed_over`, the one that went
  /// for `released`/`expired`); empty fields for `snapshot` and `changed`.
  HolderInfo holder{};
  /// The lock's state after the event.
  LockInfo state{};
};

/// "snapshot", "acquired", "released", "expired", "handed_over" or "changed".
DLOCK_API std::string_view to_string(LockEvent::Kind kind) noexcept;

}  // namespace dlock
