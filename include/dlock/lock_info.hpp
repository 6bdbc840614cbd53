// dlock/lock_info.hpp: what a store can tell about a lock: its holders and its waiters.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dlock/options.hpp"

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

  /// Whether the holder left no dlock metadata (a client such as redis-py or etcdctl).
  bool foreign() const noexcept { return host.empty() && pid == 0 && acquired_unix_ms == 0; }
};

/// One grant that holds a lock now.
struct HolderInfo {
  /// How it holds the lock (exclusive, shared, or some permits).
  LockMode mode{};
  /// Its fencing token (0 when unknown, e.g. a foreign holder).
  std::uint64_t fencing_token = 0;
  /// Its remaining time to live as the store sees it (-1 ms when unknown).
  std::chrono::milliseconds ttl_remaining{-1};
  /// Its metadata (empty fields when unknown).
  OwnerInfo owner{};
};

/// A snapshot of one lock.
struct LockInfo {
  /// The key (without the store's prefix).
  std::string key{};
  /// Whether someone holds it now.
  bool held = false;
  /// The first holder's fencing token (0 when free or unknown, e.g. a foreign holder).
  std::uint64_t fencing_token = 0;
  /// The first holder's remaining time to live (zero when free; -1 ms when unknown).
  std::chrono::milliseconds ttl_remaining{0};
  /// The first holder's metadata (empty fields when free or unknown).
  OwnerInfo owner{};
  /// Every grant that holds the lock, oldest first (one for an exclusive lock).
  std::vector<HolderInfo> holders{};
  /// How many acquisitions wait for it, when the store records waiters (its fair queue or
  /// waiter keys); empty when it does not.
  std::optional<std::uint64_t> waiters{};
};

}  // namespace dlock
