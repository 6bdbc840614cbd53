// Handles, fencing tokens and the loss signal. A lock alone is advisory: the protected
// resource must reject writes that carry a fencing token lower than one it has seen.
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

// A resource that remembers the highest fencing token it accepted.
struct FencedRegister {
  std::uint64_t highest = 0;
  bool write(std::uint64_t token) {
    if (token < highest) return false;
    highest = token;
    return true;
  }
};

int main() {
  dlock::Store store = dlock::open("memory://");
  FencedRegister reg;

  dlock::Lease first = store.acquire({}, "orders", {.ttl = 200ms});
  first.on_lost([](const dlock::LossInfo& i) {
    std::cout << "lost lock " << i.key << " (token " << i.fencing_token << ")\n";
  });
  std::this_thread::sleep_for(300ms);  // A "GC pause": the grant expires meanwhile.

  dlock::Lease second = store.acquire({}, "orders", {.ttl = 10s});
  bool ok2 = reg.write(second.fencing_token());
  bool ok1 = reg.write(first.fencing_token());  // The stale holder wakes up and tries to write.
  std::cout << "first lost=" << first.lost() << " second write accepted=" << ok2
            << " stale write accepted=" << ok1 << "\n";
  auto r = first.release();  // Typed result, never a throw: the grant was already gone.
  std::cout << "stale release: " << (r.status == dlock::ReleaseStatus::not_held ? "not held" : "?")
            << "\n";
  return first.lost() && ok2 && !ok1 ? 0 : 1;
}
