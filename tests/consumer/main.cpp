#include <dlock/dlock.hpp>
#include <iostream>

int main() {
  auto store = dlock::open("memory://");
  dlock::Lease lease = store.acquire({}, "consumer");
  std::cout << "consumer: acquired with fencing token " << lease.fencing_token() << "\n";
  return lease.held() ? 0 : 1;
}
