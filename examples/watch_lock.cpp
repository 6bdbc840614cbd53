// Watching a lock: every change (acquired, released, expired, handed over) as it happens.
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://w");
  bool saw_expiry = false;
  std::stop_source stop;
  std::thread watcher([&] {
    store.watch(
        dlock::Context::with_stop(stop.get_token()), "orders", [&](const dlock::LockEvent& e) {
          std::cout << dlock::to_string(e.kind) << " (fencing token "
                    << (e.holder.fencing_token ? e.holder.fencing_token : e.state.fencing_token)
                    << ")" << std::endl;
          saw_expiry = e.kind == dlock::LockEvent::Kind::expired;
          return !saw_expiry;  // Stop after the expiry.
        });
  });
  // The pauses let the watcher read each state: changes closer together than one read of the
  // store are reported as their net result.
  std::this_thread::sleep_for(100ms);
  {
    dlock::Lease l = store.acquire({}, "orders");  // acquired
    std::this_thread::sleep_for(100ms);
  }  // released
  std::this_thread::sleep_for(100ms);
  dlock::Lease short_lived = store.acquire({}, "orders", {.ttl = 100ms});  // acquired, expired
  watcher.join();
  stop.request_stop();
  return saw_expiry ? 0 : 1;
}
