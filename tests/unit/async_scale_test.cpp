// 10,000 asynchronous acquisitions waiting on 100 locks from one io_context thread (memory://,
// whose waits are native): every one completes, locks stay exclusive, and the waiters hold no
// threads. Prints the memory each waiting acquisition costs (a measurement, not a check).
#include <gtest/gtest.h>

#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <fstream>
#include <string>
#include <vector>

#include "dlock/asio.hpp"
#include "dlock/dlock.hpp"

namespace dlock::test {
namespace {

using namespace std::chrono_literals;

long status_field(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

TEST(AsyncScale, TenThousandWaitersOnAHundredLocksFromOneThread) {
  constexpr int kLocks = 100, kWaiters = 10'000;
  Store store = open("memory://");
  asio::io_context io;
  // Every lock is held first, so all waiters queue.
  std::vector<Lease> holders;
  for (int k = 0; k < kLocks; ++k) holders.push_back(store.acquire({}, "k" + std::to_string(k)));
  const long rss_before = status_field("VmRSS");
  const long threads_before = status_field("Threads");
  std::atomic<int> done{0}, errors{0};
  std::vector<int> inside(kLocks, 0);  // Touched on the io thread only.
  int overlaps = 0;
  std::vector<Lease> granted;
  granted.reserve(kWaiters);
  const LockOptions opts{.ttl = 60s};
  const Context ctx = Context::with_timeout(120s);
  for (int w = 0; w < kWaiters; ++w) {
    const int k = w % kLocks;
    async_acquire(store, ctx, "k" + std::to_string(k), opts,
                  asio::bind_executor(io, [&, k](std::error_code ec, Lease l) {
                    if (ec) {
                      errors++;
                    } else if (inside[k]++ != 0) {
                      overlaps++;
                    }
                    // Release on the io thread soon after, letting others of the key in.
                    auto held = std::make_shared<Lease>(std::move(l));
                    asio::post(io, [&, k, held] {
                      inside[k]--;
                      held->release();
                      done++;
                    });
                  }));
  }
  // All queued: measure while they wait.
  const long rss_waiting = status_field("VmRSS");
  const long threads_waiting = status_field("Threads");
  holders.clear();  // Releases the 100 locks: the lines start to move.
  auto work = asio::make_work_guard(io);
  std::thread stopper([&] {
    while (done < kWaiters && errors == 0) std::this_thread::sleep_for(10ms);
    work.reset();
  });
  io.run();
  stopper.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(done.load(), kWaiters);
  EXPECT_EQ(overlaps, 0);
  // Waiting held no thread: the process has its fixed dlock threads, not one per waiter.
  EXPECT_LT(threads_waiting - threads_before, 32) << threads_before << " -> " << threads_waiting;
  std::printf(
      "[ async    ] %d waiters on %d locks: %.0f bytes of RSS per waiting acquisition, "
      "%ld threads while waiting\n",
      kWaiters, kLocks, (rss_waiting - rss_before) * 1024.0 / kWaiters, threads_waiting);
}

}  // namespace
}  // namespace dlock::test
