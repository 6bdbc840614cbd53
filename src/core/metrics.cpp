#include "dlock/metrics.hpp"

#include <map>
#include <sstream>

namespace dlock {

namespace {

// A label value as the exposition format quotes it.
std::string escaped(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// `a="x",b="y"` (without braces).
std::string label_list(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out += ',';
    out += name + "=\"" + escaped(value) + '"';
  }
  return out;
}

// A bound as Prometheus writes `le` ("0.005", "1", "300").
std::string bound_text(double b) {
  std::ostringstream s;
  s << b;
  return s.str();
}

}  // namespace

std::string to_prometheus(const Metrics& m, const std::string& store) {
  return to_prometheus(m, std::map<std::string, std::string>{{"store", store}});
}

std::string to_prometheus(const Metrics& m, const std::map<std::string, std::string>& labels) {
  std::ostringstream out;
  const std::string own = label_list(labels);
  const std::string braced = own.empty() ? "" : "{" + own + "}";
  auto counter = [&](const char* name, std::uint64_t v, const char* type, const char* help) {
    out << "# HELP dlock_" << name << ' ' << help << "\n# TYPE dlock_" << name << ' ' << type
        << "\ndlock_" << name << braced << ' ' << v << '\n';
  };
  auto histogram = [&](const char* name, const Histogram& h, const char* help) {
    out << "# HELP dlock_" << name << ' ' << help << "\n# TYPE dlock_" << name << " histogram\n";
    const std::string sep = own.empty() ? "" : own + ",";
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      out << "dlock_" << name << "_bucket{" << sep << "le=\"" << bound_text(Histogram::kBounds[i])
          << "\"} " << h.cumulative[i] << '\n';
    }
    out << "dlock_" << name << "_bucket{" << sep << "le=\"+Inf\"} " << h.count << '\n';
    out << "dlock_" << name << "_sum" << braced << ' ' << static_cast<double>(h.sum_us) / 1e6
        << '\n';
    out << "dlock_" << name << "_count" << braced << ' ' << h.count << '\n';
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
  counter("at_risk_total", m.at_risk, "counter", "Times a held grant became at risk.");
  counter("recoveries_total", m.recoveries, "counter", "Times an at-risk grant recovered.");
  histogram("wait_seconds", m.wait_time, "How long successful acquisitions waited.");
  histogram("hold_seconds", m.hold_time, "How long grants were held until released or lost.");
  return out.str();
}

}  // namespace dlock
