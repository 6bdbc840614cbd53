// One worker process of the fault suite: takes the lock `iters` times through the public API,
// writes to the fenced register inside each critical section, and logs each section.
//
//   dlock_fault_worker --store URL --key K --register FILE --log FILE --id N --iters N
//                      --ttl MS --hold MS --wait MS
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "dlock/dlock.hpp"
#include "fault/checker.hpp"
#include "fault/fenced_register.hpp"

using namespace std::chrono;

namespace {

std::int64_t to_ns(steady_clock::time_point t) {
  // std::chrono::steady_clock is CLOCK_MONOTONIC on Linux: comparable across processes.
  return duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, key, reg_path, log_path;
  int id = 0, iters = 10;
  milliseconds ttl(1000), hold(20), wait(30000);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--store")
      url = v;
    else if (a == "--key")
      key = v;
    else if (a == "--register")
      reg_path = v;
    else if (a == "--log")
      log_path = v;
    else if (a == "--id")
      id = std::stoi(v);
    else if (a == "--iters")
      iters = std::stoi(v);
    else if (a == "--ttl")
      ttl = milliseconds(std::stol(v));
    else if (a == "--hold")
      hold = milliseconds(std::stol(v));
    else if (a == "--wait")
      wait = milliseconds(std::stol(v));
    else
      return 64;
  }
  dlock::fault::FencedRegister reg(reg_path);
  std::ofstream log(log_path, std::ios::app);
  int failures = 0;
  try {
    // The store may be down (a fault) when the worker starts: keep trying within the budget.
    dlock::Store store;
    for (auto until = steady_clock::now() + wait; store.closed();) {
      try {
        store = dlock::open(url);
      } catch (const dlock::Error& e) {
        if (steady_clock::now() >= until) throw;
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
    // Each section is retried until it succeeds or the wait budget is spent: a fault may make
    // the store unreachable for a while.
    auto section_deadline = steady_clock::now() + wait;
    for (int i = 0; i < iters;) {
      if (steady_clock::now() >= section_deadline) {
        ++i;
        section_deadline = steady_clock::now() + wait;
        continue;
      }
      auto t0 = steady_clock::now();
      std::atomic<std::int64_t> lost_at{0};
      dlock::Lease lease;
      try {
        lease = store.acquire(dlock::Context::with_timeout(wait), key,
                              {.ttl = ttl, .auto_renew = true});
      } catch (const dlock::Error& e) {
        std::fprintf(stderr, "worker %d: %s\n", id, e.what());
        ++failures;
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      ++i;
      section_deadline = steady_clock::now() + wait;
      const auto entered = to_ns(steady_clock::now());  // As soon as the acquire returned.
      // Tells the test that this worker is inside its critical section (not merely the
      // store's holder while its grant is still in flight), so a pause lands on a real holder.
      const std::string inside_marker = log_path + ".inside";
      std::ofstream(inside_marker).put('1');
      lease.on_lost([&](const dlock::LossInfo&) { lost_at = to_ns(steady_clock::now()); });
      dlock::fault::Section s;
      s.worker = id;
      s.token = lease.fencing_token();
      s.enter_ns = entered;
      s.wait_ns = s.enter_ns - to_ns(t0);
      std::this_thread::sleep_for(hold);  // The work (a SIGSTOP may land here).
      // The resource decides, by the fencing token; the holder checks validity first.
      if (lease.held()) {
        s.write = reg.write(s.token) ? "accepted" : "rejected";
      } else {
        s.write = "skipped";
      }
      s.exit_ns = to_ns(steady_clock::now());
      auto valid_end = to_ns(lease.valid_until());
      // Give a loss that is due a moment to be signalled before logging it.
      if (valid_end < s.exit_ns) {
        for (int k = 0; k < 100 && !lease.lost(); ++k) std::this_thread::sleep_for(10ms);
      }
      s.lost = lease.lost();
      s.lost_ns = lost_at.load();
      s.lease_end_ns = valid_end;
      s.valid_end_ns = std::min(s.exit_ns, valid_end);
      if (lost_at.load() != 0) s.valid_end_ns = std::min(s.valid_end_ns, lost_at.load());
      std::remove(inside_marker.c_str());
      lease.release();
      log << dlock::fault::format_section(s) << std::endl;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker %d: fatal: %s\n", id, e.what());
    return 69;
  }
  return 0;
}
