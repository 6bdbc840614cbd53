// A counting semaphore: at most 2 of 6 workers run at once; permits are leases (RAII, fencing
// token, renewal, loss signal) and come back by themselves if a holder dies.
#include <atomic>
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");
  std::atomic<int> running{0}, peak{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; ++w) {
    workers.emplace_back([&] {
      dlock::Semaphore downloads(store, "downloads", /*limit=*/2, {.ttl = 10s});
      dlock::Permit p = downloads.acquire({});  // Waits for a permit.
      int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(20ms);
      --running;
    });  // The permit goes back here.
  }
  for (auto& w : workers) w.join();
  dlock::Semaphore downloads(store, "downloads", 2);
  std::cout << "at most " << peak << " ran at once (limit 2); " << downloads.available({})
            << " permits free now\n";
  return peak <= 2 && downloads.available({}) == 2 ? 0 : 1;
}
