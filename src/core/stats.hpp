// Atomic counters behind `dlock::Metrics`, shared by a store core and its leases.
#pragma once

#include <atomic>
#include <cstdint>

#include "dlock/metrics.hpp"

namespace dlock::detail {

struct Stats {
  std::atomic<std::uint64_t> acquire_attempts{0}, acquisitions{0}, acquire_failures{0}, releases{0},
      releases_not_held{0}, renewals{0}, renewal_failures{0}, losses{0}, notifications{0},
      wait_time_us{0}, max_wait_us{0}, held{0};

  void record_wait(std::uint64_t us) {
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
    return m;
  }
};

}  // namespace dlock::detail
