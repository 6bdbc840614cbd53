// The asynchronous API with plain callbacks (dlock/async.hpp): nothing blocks, the callbacks
// run on a dlock thread.
#include <dlock/async.hpp>
#include <dlock/dlock.hpp>
#include <future>
#include <iostream>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");
  dlock::Lease holder = store.acquire({}, "jobs/nightly");
  std::promise<std::uint64_t> got;
  // Waits (holding no thread) until the holder releases.
  dlock::start_acquire(store, dlock::Context::with_timeout(10s), "jobs/nightly", {.ttl = 10s},
                       [&](std::error_code ec, dlock::Lease lease) {
                         if (ec) return got.set_value(0);
                         got.set_value(lease.fencing_token());
                       });  // `lease` is released when the callback returns.
  holder.release();
  const auto fence = got.get_future().get();
  std::cout << "acquired asynchronously with fencing token " << fence << "\n";
  return fence > 0 ? 0 : 1;
}
