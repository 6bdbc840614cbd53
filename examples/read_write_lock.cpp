// A read-write lock: readers hold together, a writer alone; std::shared_lock and
// std::unique_lock work with dlock::SharedMutex; a writer can downgrade without a gap.
#include <dlock/dlock.hpp>
#include <iostream>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");
  dlock::SharedMutex config(store, "config/app", {.ttl = 10s});

  int version = 0;  // Written under the write side, read under the read side.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t == 0) {
          std::unique_lock write(config);
          ++version;
        } else {
          std::shared_lock read(config);
          (void)version;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  // Publish, then keep reading what was published: no writer can slip in between.
  config.lock();
  ++version;
  config.downgrade();
  std::cout << "version " << version << " (expected 21), still reading with fencing token "
            << config.fencing_token() << "\n";
  config.unlock_shared();
  return version == 21 ? 0 : 1;
}
