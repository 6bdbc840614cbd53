// The log hook: dlock's lock events (acquired, renewed, at risk, lost, released, ...) sent to
// the application's logger. Here they go to stderr as JSON lines; with spdlog or glog, call
// their functions from the sink and map `LogLevel` onto theirs.
#include <atomic>
#include <dlock/dlock.hpp>
#include <dlock/log.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  std::atomic<int> lost_records{0};  // The sink runs on dlock's threads.
  dlock::set_log_sink(
      [&](const dlock::LogRecord& r) {
        std::cerr << dlock::format_json(r) << "\n";
        if (r.message == "lost") ++lost_records;  // Fields: r.field("reason"), r.field("key").
      },
      dlock::LogLevel::debug);

  dlock::Store store = dlock::open("memory://log-demo");
  {
    dlock::Lease lease = store.acquire({}, "reports/daily", {.ttl = 10s});
    lease.renew({}, 10s);
  }  // released
  dlock::Lease kept = store.acquire({}, "reports/weekly", {.ttl = 10s, .auto_renew = true});
  std::stop_token lost = kept.lost_token();  // Signalled after the "lost" record.
  dlock::open("memory://log-demo").force_release({}, "reports/weekly");  // -> "lost"
  for (int i = 0; i < 100 && !lost.stop_requested(); ++i) std::this_thread::sleep_for(10ms);

  dlock::set_log_sink({});  // Off again: a record then costs one atomic load.
  std::cout << "lost records: " << lost_records << "\n";
  return lost_records == 1 ? 0 : 1;
}
