// Leader election: one active instance of a singleton with a standby ready to take over; the
// term (a fencing token) lets a resource reject a deposed leader; observers see every change.
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://cluster");
  dlock::Election election(store, "scheduler", {.ttl = 10s});

  // An observer (a dashboard, say) prints every change of leader.
  std::stop_source stop_observing;
  std::thread observer([&] {
    dlock::Election(dlock::open("memory://cluster"), "scheduler")
        .observe(dlock::Context::with_stop(stop_observing.get_token()),
                 [](const std::optional<dlock::LeaderInfo>& l) {
                   if (l) {
                     std::cout << "leader: " << l->value << " (term " << l->term << ")\n";
                   } else {
                     std::cout << "no leader\n";
                   }
                   return true;
                 });
  });

  dlock::Leadership first = election.campaign({}, "host-a:8080");
  std::uint64_t first_term = first.term();
  std::thread standby([&] {
    dlock::Leadership second = election.campaign({}, "host-b:8080");  // Waits for the lead.
    std::cout << "host-b leads with term " << second.term() << "\n";
  });
  std::this_thread::sleep_for(100ms);
  first.proclaim({}, "host-a:9090");  // A new address, still the leader.
  std::this_thread::sleep_for(100ms);
  first.resign();  // host-b takes over.
  standby.join();
  std::this_thread::sleep_for(100ms);
  stop_observing.request_stop();
  observer.join();
  auto now = election.leader({});
  std::cout << "first term " << first_term << "; leader now: " << (now ? now->value : "none")
            << "\n";
  return now ? 1 : 0;  // host-b resigned when its Leadership went out of scope.
}
