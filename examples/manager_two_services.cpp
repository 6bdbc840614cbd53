// A LockManager with two named services (the seed's "redis" and "etcd" pattern), here both on
// in-process stores so the example runs anywhere. Swap the URLs for real stores.
#include <dlock/dlock.hpp>
#include <iostream>

using namespace std::chrono_literals;

int main() {
  dlock::LockManager manager;
  manager.register_service("fast",
                           std::make_shared<dlock::LockService>(dlock::open("memory://fast"),
                                                                dlock::LockOptions{.ttl = 5s}));
  manager.register_service("strong",
                           std::make_shared<dlock::LockService>(dlock::open("memory://strong"),
                                                                dlock::LockOptions{.ttl = 30s}));

  manager.with_lock("fast", {}, "cache/refresh", [] { std::cout << "refreshing the cache\n"; });
  manager.with_lock("strong", {}, "ledger/close", [&](const dlock::Lease& lease) {
    std::cout << "closing the ledger with fencing token " << lease.fencing_token() << "\n";
    auto info = manager.lock_info("strong", {}, "ledger/close");
    std::cout << "held by pid " << info.owner.pid << " on " << info.owner.host << "\n";
  });
  try {
    manager.is_locked("nope", {}, "x");
  } catch (const dlock::Error& e) {
    std::cout << "unknown service: " << e.what() << "\n";
  }
  manager.close();  // Releases everything held through both services.
  return 0;
}
