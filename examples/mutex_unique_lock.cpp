// dlock::Mutex meets Lockable/TimedLockable, so the standard lock helpers work with it.
#include <dlock/dlock.hpp>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");
  dlock::Mutex account_a(store, "accounts/a", {.ttl = 10s});
  dlock::Mutex account_b(store, "accounts/b", {.ttl = 10s});

  long balance = 0;  // Protected by account_a across the threads below.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::unique_lock lock(account_a);
        ++balance;
      }
    });
  }
  for (auto& t : threads) t.join();

  {
    std::scoped_lock both(account_a, account_b);  // Deadlock-free multi-lock (std::lock).
    std::cout << "transfer under both locks, fencing a=" << account_a.fencing_token()
              << " b=" << account_b.fencing_token() << "\n";
  }
  std::unique_lock timed(account_a, std::defer_lock);
  bool got = timed.try_lock_for(100ms);
  std::cout << "balance " << balance << " (expected 200), try_lock_for: " << got << "\n";
  return balance == 200 && got ? 0 : 1;
}
