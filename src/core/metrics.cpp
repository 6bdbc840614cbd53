#include "dlock/metrics.hpp"

#include <sstream>

namespace dlock {

std::string to_prometheus(const Metrics& m, const std::string& store) {
  std::ostringstream out;
  auto counter = [&](const char* name, std::uint64_t v, const char* type, const char* help) {
    out << "# HELP dlock_" << name << ' ' << help << "\n# TYPE dlock_" << name << ' ' << type
        << "\ndlock_" << name << "{store=\"" << store << "\"} " << v << '\n';
  };
  counter("acquire_attempts_total", m.acquire_attempts, "counter", "Acquire attempts sent.");
  counter("acquisitions_total", m.acquisitions, "counter", "Successful acquisitions.");
  counter("acquire_failures_total", m.acquire_failures, "counter", "Acquisitions given up.");
  counter("releases_total", m.releases, "counter", "Releases that deleted our grant.");
  counter("releases_not_held_total", m.releases_not_held, "counter",
          "Releases that found the grant gone.");
  counter("renewals_total", m.renewals, "counter", "Successful renewals.");
  counter("renewal_failures_total", m.renewal_failures, "counter", "Failed renewals.");
  counter("losses_total", m.losses, "counter", "Loss signals fired.");
  counter("notifications_total", m.notifications, "counter", "Waiter wake-ups by notification.");
  counter("wait_time_microseconds_total", m.wait_time_us, "counter", "Total acquire wait.");
  counter("max_wait_microseconds", m.max_wait_us, "gauge", "Longest acquire wait.");
  counter("held", m.held, "gauge", "Grants held now.");
  return out.str();
}

}  // namespace dlock
