// Atomic counters behind `dlock::Metrics`, shared by a store core and its leases.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

#include "dlock/metrics.hpp"

namespace dlock::detail {

// A histogram that threads add to without a lock: one counter per bucket (not cumulative, so
// one increment per observation), made cumulative in the snapshot.
struct AtomicHistogram {
  std::array<std::atomic<std::uint64_t>, Histogram::kBounds.size()> buckets{};
  std::atomic<std::uint64_t> count{0}, sum_us{0};

  void record(std::uint64_t us) {
    const double seconds = static_cast<double>(us) / 1e6;
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      if (seconds <= Histogram::kBounds[i]) {
        buckets[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    sum_us.fetch_add(us, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
  }

  Histogram snapshot() const {
    Histogram h;
    std::uint64_t below = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      below += buckets[i].load(std::memory_order_relaxed);
      h.cumulative[i] = below;
    }
    h.sum_us = sum_us.load(std::memory_order_relaxed);
    // Read last and never below the buckets: a concurrent record may have counted its bucket
    // but not yet `count`.
    h.count = std::max(count.load(std::memory_order_relaxed), below);
    return h;
  }
};

struct Stats {
  std::atomic<std::uint64_t> acquire_attempts{0}, acquisitions{0}, acquire_failures{0}, releases{0},
      releases_not_held{0}, renewals{0}, renewal_failures{0}, losses{0}, notifications{0},
      wait_time_us{0}, max_wait_us{0}, held{0}, at_risk{0}, recoveries{0};

  AtomicHistogram wait_hist, hold_hist;

  void record_wait(std::uint64_t us) {
    wait_hist.record(us);
    wait_time_us += us;
    auto prev = max_wait_us.load(std::memory_order_relaxed);
    while (prev < us && !max_wait_us.compare_exchange_weak(prev, us)) {
    }
  }

  Metrics snapshot() const {
    Metrics m;
    m.acquire_attempts = acquire_attempts;
    m.acquisitions = acquisitions;
    m.acquire_failures = acquire_failures;
    m.releases = releases;
    m.releases_not_held = releases_not_held;
    m.renewals = renewals;
    m.renewal_failures = renewal_failures;
    m.losses = losses;
    m.notifications = notifications;
    m.wait_time_us = wait_time_us;
    m.max_wait_us = max_wait_us;
    m.held = held;
    m.at_risk = at_risk;
    m.recoveries = recoveries;
    m.wait_time = wait_hist.snapshot();
    m.hold_time = hold_hist.snapshot();
    return m;
  }
};

}  // namespace dlock::detail
