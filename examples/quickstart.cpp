// The seed's README usage in C++: a LockService running a job under a lock.
#include <dlock/dlock.hpp>
#include <iostream>

using namespace std::chrono_literals;

int main() {
  // Any URL works: "redis://127.0.0.1:6379", "etcd://127.0.0.1:2379", "file:///tmp/locks".
  dlock::Store store = dlock::open("memory://");
  dlock::LockService service(store, {.ttl = 10s, .wait = dlock::WaitPolicy::up_to(5s)});

  // Blocking: waits up to 5 s, renews while the job runs, releases on return or exception.
  service.with_lock(dlock::Context::with_timeout(30s), "jobs/nightly-report",
                    [](std::stop_token lost) {
                      std::cout << "running the nightly report under the lock\n";
                      if (lost.stop_requested()) std::cout << "lock lost: stop writing\n";
                    });

  // Non-blocking: runs only if nobody holds the lock.
  bool ran = service.try_with_lock({}, "jobs/cache-warmup", [](const dlock::Lease& lease) {
    std::cout << "warming the cache, fencing token " << lease.fencing_token() << "\n";
  });
  std::cout << "cache warm-up " << (ran ? "ran" : "skipped: someone else holds it") << "\n";

  // The seed's key-based interface.
  if (store.try_lock({}, "resource-1", {.ttl = 30s})) {
    auto info = service.lock_info({}, "resource-1");
    std::cout << "resource-1 held=" << info.held << " fencing=" << info.fencing_token
              << " ttl_left=" << info.ttl_remaining.count() << "ms\n";
    store.renew({}, "resource-1", 60s);
    store.unlock({}, "resource-1");
  }
  return 0;
}
