// dlock/metrics.hpp: counters every store keeps, readable at any time.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "dlock/export.hpp"

namespace dlock {

/// A distribution of durations: how many fell at or under each bound, as Prometheus histograms
/// count them (cumulative), plus their number and sum.
struct Histogram {
  /// The upper bounds of the buckets, in seconds (the last bucket, +Inf, is `count`).
  static constexpr std::array<double, 12> kBounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,   1,    5,     30,   300};
  /// `cumulative[i]`: observations <= `kBounds[i]`.
  std::array<std::uint64_t, kBounds.size()> cumulative{};
  /// Observations in all.
  std::uint64_t count = 0;
  /// Their sum, in microseconds.
  std::uint64_t sum_us = 0;
};

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
  /// Times a held grant became at risk (a renewal failed, or the store reported its
  /// connection interrupted).
  std::uint64_t at_risk = 0;
  /// Times an at-risk grant recovered.
  std::uint64_t recoveries = 0;
  /// How long successful acquisitions waited (from the call to the grant).
  Histogram wait_time{};
  /// How long grants were held (from the grant to its release or loss).
  Histogram hold_time{};
};

/// Renders `m` in the Prometheus text exposition format (also node_exporter's textfile
/// format), each metric named `dlock_<field>` with the label `store="<scheme>"`; the two
/// histograms are `dlock_wait_seconds` and `dlock_hold_seconds`.
DLOCK_API std::string to_prometheus(const Metrics& m, const std::string& store);

/// The same with labels of your own on every sample (e.g. `{{"store", "redis"}, {"url",
/// store.url()}, {"service", "billing"}}` to tell several store objects apart). Label values
/// are escaped; names must be valid Prometheus label names.
DLOCK_API std::string to_prometheus(const Metrics& m,
                                    const std::map<std::string, std::string>& labels);

}  // namespace dlock
