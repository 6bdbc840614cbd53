// The conformance suite, part three: the asynchronous API (dlock/asio.hpp over dlock/async.hpp)
// on every store kind: callbacks, futures, coroutines and deferred operations, exclusion,
// waiting, deadlines and cancellation through Asio's cancellation slots.
#include <gtest/gtest.h>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <future>

#include "conformance/fixture.hpp"
#include "dlock/asio.hpp"

namespace dlock::test {
namespace {

TEST_P(Conformance, AsyncAcquireWithACallbackWaitsForTheHolder) {
  Store other = another();
  Lease held = store_.acquire({}, key());
  std::promise<std::pair<std::error_code, Lease>> got;
  async_acquire(other, Context::with_timeout(30s), key(), {}, [&](std::error_code ec, Lease l) {
    got.set_value({ec, std::move(l)});
  });
  auto f = got.get_future();
  EXPECT_EQ(f.wait_for(300ms), std::future_status::timeout);  // Held: it waits.
  const auto fence = held.fencing_token();
  held.release();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  auto [ec, lease] = f.get();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(lease.held());
  EXPECT_GT(lease.fencing_token(), fence);
}

TEST_P(Conformance, AsyncOperationsWorkWithFuturesAndCoroutines) {
  asio::io_context io;
  auto f = async_acquire(store_, {}, key("f"), {}, asio::use_future);
  Lease a = f.get();
  EXPECT_TRUE(a.held());
  std::optional<Lease> none, got;
  LockInfo info;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Arguments are named, not temporaries: GCC 12 miscompiles class-type temporaries in a
        // co_await expression (see dlock/asio.hpp).
        const Context ctx;
        const LockOptions opts;
        const std::string f = key("f"), c = key("c");
        none = co_await async_try_acquire(store_, ctx, f, opts, asio::use_awaitable);
        got = co_await async_try_acquire(store_, ctx, c, opts, asio::use_awaitable);
        info = co_await async_inspect(store_, ctx, c, asio::use_awaitable);
        co_await async_renew(*got, ctx, 20s, asio::use_awaitable);
        auto status = co_await async_release(std::move(*got), ctx, asio::use_awaitable);
        EXPECT_EQ(status, ReleaseStatus::released);
      },
      asio::detached);
  io.run();
  EXPECT_FALSE(none.has_value());  // Held by `a`.
  EXPECT_TRUE(info.held);
  EXPECT_FALSE(store_.is_locked({}, key("c")));
  // A deferred operation does nothing until it is launched.
  auto op = async_acquire(store_, {}, key("d"), {}, asio::experimental::deferred);
  EXPECT_FALSE(store_.is_locked({}, key("d")));
  std::promise<Lease> launched;
  std::move(op)([&](std::error_code ec, Lease l) {
    EXPECT_FALSE(ec);
    launched.set_value(std::move(l));
  });
  EXPECT_TRUE(launched.get_future().get().held());
}

TEST_P(Conformance, AsyncAcquireEndsAtTheDeadlineAndByCancellation) {
  Lease held = store_.acquire({}, key());
  Store other = another();
  auto start = clock::now();
  auto f = async_acquire(other, Context::with_timeout(300ms), key(), {}, asio::use_future);
  try {
    f.get();
    FAIL() << "acquired a held lock";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), errc::timeout);
  }
  EXPECT_LT(clock::now() - start, 300ms + 2s);
  // Cancellation through Asio's per-operation slot.
  asio::cancellation_signal cancel;
  std::promise<std::error_code> ended;
  async_acquire(other, {}, key(), {},
                asio::bind_cancellation_slot(
                    cancel.slot(), [&](std::error_code ec, Lease) { ended.set_value(ec); }));
  std::this_thread::sleep_for(100ms);
  cancel.emit(asio::cancellation_type::terminal);
  auto fe = ended.get_future();
  ASSERT_EQ(fe.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(fe.get(), errc::cancelled);
  // ...and through the Context's stop token.
  std::stop_source stop;
  auto fs = async_acquire(other, Context::with_stop(stop.get_token()), key(), {}, asio::use_future);
  std::this_thread::sleep_for(100ms);
  stop.request_stop();
  ASSERT_EQ(fs.wait_for(5s), std::future_status::ready);
  EXPECT_THROW(fs.get(), std::system_error);
  held.release();
  EXPECT_TRUE(other.try_acquire({}, key()).has_value());  // Nothing was left behind.
}

TEST_P(Conformance, ManyCoroutinesOnOneThreadShareALock) {
  constexpr int kCoroutines = 16, kIters = 5;
  asio::io_context io;
  long counter = 0;
  std::atomic<int> inside{0}, overlaps{0}, errors{0};
  for (int c = 0; c < kCoroutines; ++c) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const std::string k = key();
          const LockOptions opts{.ttl = 10s};
          for (int i = 0; i < kIters; ++i) {
            try {
              const Context ctx = Context::with_timeout(60s);
              Lease l = co_await async_acquire(store_, ctx, k, opts, asio::use_awaitable);
              if (inside.fetch_add(1) != 0) overlaps++;
              long v = counter;
              asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
              co_await t.async_wait(asio::use_awaitable);  // Other coroutines run meanwhile.
              counter = v + 1;
              inside.fetch_sub(1);
            } catch (const std::exception&) {
              errors++;
            }
          }
        },
        asio::detached);
  }
  io.run();  // One thread: waiting coroutines hold none.
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, kCoroutines * kIters);
}

}  // namespace
}  // namespace dlock::test
