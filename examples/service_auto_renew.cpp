// A long-running job keeps its lock alive with LockService::auto_renew (the seed's AutoRenew),
// then stops renewing and unlocks. The TTL is short; the job runs for several TTLs.
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dlock::LockService service(dlock::open("memory://"), {.ttl = 300ms});
  if (!service.try_lock({}, "jobs/reindex")) return 1;

  std::stop_source stop;
  std::jthread job([&] {
    std::this_thread::sleep_for(1s);  // ~3 TTLs of work.
    stop.request_stop();
  });
  // Blocks until `stop`; the renewals run on dlock's one renewal scheduler.
  auto end = service.auto_renew({}, "jobs/reindex", 100ms, stop.get_token());
  auto info = service.lock_info({}, "jobs/reindex");
  std::cout << "auto-renew ended: " << (end == dlock::AutoRenewEnd::stopped ? "stopped" : "other")
            << ", still held: " << info.held << ", renewals: " << service.store().metrics().renewals
            << "\n";
  service.unlock({}, "jobs/reindex");
  return info.held ? 0 : 1;
}
