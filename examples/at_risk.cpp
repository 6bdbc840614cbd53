// Loss and at-risk signals: stop early when dlock cannot confirm the lock, resume when it
// recovers, stop for good when it is lost (here: an operator's force release).
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://demo");
  dlock::Lease lease = store.acquire(
      {}, "jobs/etl",
      {.ttl = 30s,
       .auto_renew = true,
       .on_lost = [](const dlock::LossInfo& i) { std::cout << "lost " << i.key << "\n"; },
       .on_at_risk = [](const dlock::RiskInfo& i) { std::cout << "at risk " << i.key << "\n"; },
       .on_recovered =
           [](const dlock::RiskInfo& i) { std::cout << "recovered " << i.key << "\n"; }});
  std::stop_token lost = lease.lost_token();
  // Someone else breaks the lock (memory:// tells the holder at once; see docs/RELIABILITY.md
  // for how fast each store does).
  dlock::open("memory://demo").force_release({}, "jobs/etl");
  for (int i = 0; i < 100 && !lost.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
  std::cout << "loss signalled: " << lost.stop_requested() << "\n";
  return lost.stop_requested() ? 0 : 1;
}
