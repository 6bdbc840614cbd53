// dlock/lock_info.hpp: what a store can tell about a lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dlock {

/// Who holds a lock, as recorded by the holder when it acquired it.
struct OwnerInfo {
  /// Host name of the holder (empty when unknown, e.g. a foreign client holds the lock).
  std::string host{};
  /// Process id of the holder (0 when unknown).
  std::int64_t pid = 0;
  /// The holder's free text (`LockOptions::metadata`).
  std::string text{};
  /// When it acquired, milliseconds since the Unix epoch (0 when unknown).
  std::int64_t acquired_unix_ms = 0;
};

/// A snapshot of one lock.
struct LockInfo {
  /// The key (without the store's prefix).
  std::string key{};
  /// Whether someone holds it now.
  bool held = false;
  /// The holder's fencing token (0 when free or unknown, e.g. a foreign holder).
  std::uint64_t fencing_token = 0;
  /// Remaining time to live as the store sees it (zero when free; -1 ms when unknown).
  std::chrono::milliseconds ttl_remaining{0};
  /// Holder metadata (empty fields when free or unknown).
  OwnerInfo owner{};
};

}  // namespace dlock
