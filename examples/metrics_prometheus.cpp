// Every store object counts attempts, acquisitions, renewals, losses and waits; export them
// in the Prometheus text format.
#include <dlock/dlock.hpp>
#include <iostream>

int main() {
  dlock::Store store = dlock::open("memory://");
  for (int i = 0; i < 3; ++i) {
    dlock::Lease l = store.acquire({}, "k");
  }
  std::cout << dlock::to_prometheus(store.metrics(), std::string(store.scheme()));
  return store.metrics().acquisitions == 3 ? 0 : 1;
}
