// dlock/metrics.hpp: counters every store keeps, readable at any time.
#pragma once

#include <cstdint>
#include <string>

namespace dlock {

/// A snapshot of one store object's counters since it was opened.
struct Metrics {
  /// Acquire requests sent to the store (one per round of the waiting loop; a lock that a
  /// release handed to a waiter, as on Redis, takes none).
  std::uint64_t acquire_attempts = 0;
  /// Successful acquisitions.
  std::uint64_t acquisitions = 0;
  /// Waiting calls that ended without the lock (timeout, cancel, no-wait failure).
  std::uint64_t acquire_failures = 0;
  /// Releases that deleted our grant.
  std::uint64_t releases = 0;
  /// Releases that found the grant gone.
  std::uint64_t releases_not_held = 0;
  /// Successful renewals (manual and automatic).
  std::uint64_t renewals = 0;
  /// Renewals that failed (store error or rejection).
  std::uint64_t renewal_failures = 0;
  /// Loss signals fired.
  std::uint64_t losses = 0;
  /// Wake-ups of waiters by a store notification.
  std::uint64_t notifications = 0;
  /// Sum of the time acquisitions waited, in microseconds.
  std::uint64_t wait_time_us = 0;
  /// Longest wait of one acquisition, in microseconds.
  std::uint64_t max_wait_us = 0;
  /// Grants currently held through this store object.
  std::uint64_t held = 0;
};

/// Renders `m` in the Prometheus text exposition format, each metric named `dlock_<field>`
/// with the label `store="<scheme>"`.
std::string to_prometheus(const Metrics& m, const std::string& store);

}  // namespace dlock
