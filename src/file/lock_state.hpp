// The state file of one lock: who holds it, until when, and the last fencing token given.
//
// Expiry uses CLOCK_MONOTONIC, the host-wide clock that every process shares and that never
// jumps with the wall clock. It is the clock of std::chrono::steady_clock, so the store and
// each holder's own validity (core's `valid_until`) measure time identically: a holder never
// believes it still holds a lock the store has already expired (CLOCK_BOOTTIME would expire
// every lock during a suspend while holders, on the steady clock, would not notice). A
// deadline only means something on the boot that wrote it, so the boot id is stored beside
// it: a record from an earlier boot is free, its holder cannot have survived the reboot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dlock::detail {

struct LockState {
  /// The last fencing token given for this key (kept when the lock is free).
  std::uint64_t fencing = 0;
  /// The holder's random token; empty when free.
  std::string token{};
  /// The holder's slot in the `alive` file (alive_slots.hpp).
  std::uint64_t slot = 0;
  /// /proc/sys/kernel/random/boot_id of the boot that wrote `deadline_ns`.
  std::string boot_id{};
  /// CLOCK_MONOTONIC nanoseconds at which the grant expires.
  std::int64_t deadline_ns = 0;
  /// Owner metadata (JSON text from core).
  std::string metadata{};

  /// Whether the record names a holder whose TTL has not passed at `now_ns` on this boot.
  /// (Whether that holder is still alive is the kernel lock's business, not the record's.)
  bool unexpired(std::int64_t now_ns) const;
  /// Forgets the holder, keeps the fencing counter.
  void clear();
};

/// The state as file text (one JSON object).
std::string serialize_state(const LockState& s);
/// Parses file text; nullopt when it is not a state record.
std::optional<LockState> parse_state(const std::string& text);

/// CLOCK_MONOTONIC in nanoseconds (the steady clock of every process on this boot).
std::int64_t monotonic_ns() noexcept;
/// This boot's id (read once).
const std::string& current_boot_id();

}  // namespace dlock::detail
