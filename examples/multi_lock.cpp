// Several locks at once, all or nothing, in one global order (no deadlock between callers
// asking in different orders), with one loss signal for the group; and reentrancy.
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");
  long moved = 0;
  auto transfer = [&](std::string from, std::string to) {
    for (int i = 0; i < 50; ++i) {
      dlock::MultiLease both = store.acquire_all({}, {from, to}, {.ttl = 10s});
      ++moved;  // Both accounts are ours until `both` goes.
    }
  };
  std::thread a(transfer, "accounts/1", "accounts/2");
  std::thread b(transfer, "accounts/2", "accounts/1");  // The opposite order: no deadlock.
  a.join();
  b.join();

  // Reentrancy: the owner (this thread) takes the lock it holds again, with no round trip.
  dlock::LockOptions reentrant{.ttl = 10s, .reentrant = true};
  dlock::Lease outer = store.acquire({}, "jobs/rebuild", reentrant);
  dlock::Lease inner = store.acquire({}, "jobs/rebuild", reentrant);
  inner.release();  // Only its share: the lock stays held by `outer`.
  const bool still = store.is_locked({}, "jobs/rebuild");
  std::cout << moved << " transfers (expected 100); held after the inner release: " << still
            << "\n";
  return moved == 100 && still ? 0 : 1;
}
