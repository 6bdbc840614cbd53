// The asynchronous API with Asio completion tokens (dlock/asio.hpp): a future, and 8 C++20
// coroutines on one io_context thread taking turns on one lock.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <dlock/asio.hpp>
#include <dlock/dlock.hpp>
#include <iostream>

using namespace std::chrono_literals;

int main() {
  dlock::Store store = dlock::open("memory://");

  std::future<dlock::Lease> f = dlock::async_acquire(store, {}, "a", {}, asio::use_future);
  std::cout << "future: fencing token " << f.get().fencing_token() << "\n";

  asio::io_context io;
  int turns = 0;
  for (int c = 0; c < 8; ++c) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          // Arguments are named: GCC 12 miscompiles class-type temporaries in co_await.
          const dlock::Context ctx = dlock::Context::with_timeout(10s);
          const std::string key = "jobs/report";
          const dlock::LockOptions opts{.ttl = 10s};
          dlock::Lease l =
              co_await dlock::async_acquire(store, ctx, key, opts, asio::use_awaitable);
          ++turns;  // One coroutine at a time: the lock excludes the others.
          co_await dlock::async_release(std::move(l), ctx, asio::use_awaitable);
        },
        asio::detached);
  }
  io.run();
  std::cout << turns << " coroutines took their turn on one thread\n";
  return turns == 8 ? 0 : 1;
}
