// dlock/asio.hpp: the asynchronous API with Asio completion tokens (standalone Asio, Debian's
// libasio-dev). Optional: the other dlock headers never include Asio.
//
//   dlock::async_acquire(store, {}, "jobs/nightly", {.ttl = 10s}, [](std::error_code ec,
//                        dlock::Lease lease) { ... });                      // a callback
//   std::future<dlock::Lease> f = dlock::async_acquire(store, {}, "k", {}, asio::use_future);
//   dlock::Lease l = co_await dlock::async_acquire(store, {}, "k", {}, asio::use_awaitable);
//   auto op = dlock::async_acquire(store, {}, "k", {}, asio::experimental::deferred);  // later
//
// Signatures: acquire `void(std::error_code, Lease)`, try_acquire `void(std::error_code,
// std::optional<Lease>)`, release `void(std::error_code, ReleaseStatus)`, renew
// `void(std::error_code)`, inspect `void(std::error_code, LockInfo)`. The handler runs on its
// associated executor (the coroutine's, the strand's; a plain callback runs on a dlock thread).
// Cancel through the handler's cancellation slot (`asio::bind_cancellation_slot`, the
// coroutine's `co_await` cancellation, `asio::experimental::make_parallel_group`...) or the
// Context's stop token: the operation then ends with `errc::cancelled`. Waiting holds no thread
// (see dlock/async.hpp). Errors are `std::error_code`s of the dlock category (`dlock::errc`);
// with `use_future`/`use_awaitable` they arrive as `std::system_error`.
//
// GCC 12 (Debian 12's compiler) miscompiles temporaries of class type inside a `co_await`
// expression (`co_await dlock::async_acquire(store, {}, "k", {}, asio::use_awaitable)` frees
// an invalid pointer): name the arguments first (`std::string k = "k"; LockOptions o;`).
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "dlock/async.hpp"

namespace dlock {
namespace asio_detail {

// Completes `handler` with `args` on its associated executor, keeping that executor's work
// counted meanwhile, and clears its cancellation slot first.
template <class Handler>
class Completion {
 public:
  explicit Completion(Handler h)
      : handler_(std::make_shared<Handler>(std::move(h))),
        work_(std::make_shared<Work>(
            ::asio::make_work_guard(::asio::get_associated_executor(*handler_)))) {}

  template <class Cancel>
  void on_cancel(Cancel cancel) {
    auto slot = ::asio::get_associated_cancellation_slot(*handler_);
    if (slot.is_connected()) slot.assign([cancel](::asio::cancellation_type) { cancel(); });
  }

  template <class... Args>
  void operator()(Args&&... args) const {
    auto slot = ::asio::get_associated_cancellation_slot(*handler_);
    if (slot.is_connected()) slot.clear();
    auto values = std::make_shared<std::tuple<std::decay_t<Args>...>>(std::forward<Args>(args)...);
    ::asio::dispatch(work_->get_executor(), [h = handler_, work = work_, values]() mutable {
      std::apply([&](auto&&... v) { std::move (*h)(std::move(v)...); }, std::move(*values));
    });
  }

 private:
  using Work =
      decltype(::asio::make_work_guard(::asio::get_associated_executor(std::declval<Handler&>())));
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<Work> work_;
};

}  // namespace asio_detail

/// `Store::acquire` with a completion token: `void(std::error_code, Lease)`.
template <class CompletionToken>
auto async_acquire(const Store& store, const Context& ctx, std::string key, LockOptions opts,
                   CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::error_code, Lease)>(
      [](auto handler, Store store, Context ctx, std::string key, LockOptions opts) {
        asio_detail::Completion<decltype(handler)> done(std::move(handler));
        AsyncHandle op =
            start_acquire(store, ctx, std::move(key), opts,
                          [done](std::error_code ec, Lease l) mutable { done(ec, std::move(l)); });
        done.on_cancel([op] { op.cancel(); });
      },
      token, store, ctx, std::move(key), std::move(opts));
}

/// `Store::try_acquire` with a completion token: `void(std::error_code, std::optional<Lease>)`.
template <class CompletionToken>
auto async_try_acquire(const Store& store, const Context& ctx, std::string key, LockOptions opts,
                       CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::error_code, std::optional<Lease>)>(
      [](auto handler, Store store, Context ctx, std::string key, LockOptions opts) {
        asio_detail::Completion<decltype(handler)> done(std::move(handler));
        AsyncHandle op = start_try_acquire(
            store, ctx, std::move(key), opts,
            [done](std::error_code ec, std::optional<Lease> l) { done(ec, std::move(l)); });
        done.on_cancel([op] { op.cancel(); });
      },
      token, store, ctx, std::move(key), std::move(opts));
}

/// `Lease::release` with a completion token: `void(std::error_code, ReleaseStatus)` (the error
/// is set for `not_held` and `failed`).
template <class CompletionToken>
auto async_release(Lease lease, const Context& ctx, CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::error_code, ReleaseStatus)>(
      [](auto handler, Lease lease, Context ctx) {
        asio_detail::Completion<decltype(handler)> done(std::move(handler));
        start_release(std::move(lease), ctx, [done](ReleaseResult r) { done(r.error, r.status); });
      },
      token, std::move(lease), ctx);
}

/// `Lease::renew` with a completion token: `void(std::error_code)`.
template <class CompletionToken>
auto async_renew(const Lease& lease, const Context& ctx, std::chrono::milliseconds ttl,
                 CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::error_code)>(
      [&lease](auto handler, Context ctx, std::chrono::milliseconds ttl) {
        asio_detail::Completion<decltype(handler)> done(std::move(handler));
        start_renew(lease, ctx, ttl, [done](std::error_code ec) { done(ec); });
      },
      token, ctx, ttl);
}

/// `Store::inspect` with a completion token: `void(std::error_code, LockInfo)`.
template <class CompletionToken>
auto async_inspect(const Store& store, const Context& ctx, std::string key,
                   CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::error_code, LockInfo)>(
      [](auto handler, Store store, Context ctx, std::string key) {
        asio_detail::Completion<decltype(handler)> done(std::move(handler));
        start_inspect(store, ctx, std::move(key),
                      [done](std::error_code ec, LockInfo info) { done(ec, std::move(info)); });
      },
      token, store, ctx, std::move(key));
}

}  // namespace dlock
