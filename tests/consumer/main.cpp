#include <dlock/dlock.hpp>
#include <iostream>
#include <string>

int main() {
  // Headers and library of one version.
  if (std::string(dlock::version()) != DLOCK_VERSION_STRING) return 2;
  auto store = dlock::open("memory://");
  dlock::Lease lease = store.acquire({}, "consumer");
  std::cout << "consumer: acquired with fencing token " << lease.fencing_token() << "\n";
  return lease.held() ? 0 : 1;
}
