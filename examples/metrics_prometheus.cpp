// Every store object counts attempts, acquisitions, renewals, losses and waits, and keeps
// wait-time and hold-time histograms; export them in the Prometheus text format (serving them
// over HTTP: examples/metrics_http.cpp; from the CLI: `dlock run --metrics-file`).
#include <dlock/dlock.hpp>
#include <iostream>

int main() {
  dlock::Store store = dlock::open("memory://");
  for (int i = 0; i < 3; ++i) {
    dlock::Lease l = store.acquire({}, "k");
  }
  std::cout << dlock::to_prometheus(store.metrics(), std::string(store.scheme()));
  const dlock::Metrics m = store.metrics();
  return m.acquisitions == 3 && m.hold_time.count == 3 ? 0 : 1;
}
