#include "dlock/async.hpp"

#include "core/access.hpp"
#include "core/async_acquire.hpp"
#include "core/lease_state.hpp"
#include "core/store_core.hpp"
#include "core/worker_pool.hpp"

namespace dlock {
namespace {

std::error_code code_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& x) {
    return x.code();
  } catch (...) {
    return make_error_code(errc::protocol_error);
  }
}

std::shared_ptr<detail::StoreCore> core_of(const Store& store) {
  const auto& core = detail::Access::core(store);
  if (!core) throw Error(errc::closed, "", "", "acquire", "store not opened");
  return core;
}

// Runs `job` on the worker pool (every callback runs on a dlock thread, never the caller's).
void on_pool(std::function<void()> job) { detail::WorkerPool::process_wide().post(std::move(job)); }

}  // namespace

void AsyncHandle::cancel() const noexcept {
  if (op_) op_->cancel();
}

AsyncHandle start_try_acquire(const Store& store, const Context& ctx, std::string key,
                              const LockOptions& opts, TryAcquireCallback done) {
  std::shared_ptr<detail::StoreCore> core;
  try {
    core = core_of(store);
  } catch (const Error& e) {
    on_pool([done, code = e.code()] { done(code, std::nullopt); });
    return {};
  }
  auto op = detail::AsyncAcquire::start(
      std::move(core), std::move(key), opts, ctx, /*single_attempt=*/true,
      [done = std::move(done)](std::exception_ptr e, std::optional<Lease> lease) {
        auto shared = std::make_shared<std::optional<Lease>>(std::move(lease));
        on_pool(
            [done, e, shared] { done(e ? code_of(e) : std::error_code{}, std::move(*shared)); });
      });
  return detail::Access::handle(std::move(op));
}

AsyncHandle start_acquire(const Store& store, const Context& ctx, std::string key,
                          const LockOptions& opts, AcquireCallback done) {
  std::shared_ptr<detail::StoreCore> core;
  try {
    core = core_of(store);
  } catch (const Error& e) {
    on_pool([done, code = e.code()] { done(code, Lease()); });
    return {};
  }
  auto op = detail::AsyncAcquire::start(
      std::move(core), std::move(key), opts, ctx, /*single_attempt=*/false,
      [done = std::move(done)](std::exception_ptr e, std::optional<Lease> lease) {
        auto shared = std::make_shared<std::optional<Lease>>(std::move(lease));
        on_pool([done, e, shared] {
          if (e) return done(code_of(e), Lease());
          if (!*shared) return done(make_error_code(errc::timeout), Lease());  // No-wait policy.
          done({}, std::move(**shared));
        });
      });
  return detail::Access::handle(std::move(op));
}

void start_release(Lease lease, const Context& ctx, std::function<void(ReleaseResult)> done) {
  auto shared = std::make_shared<Lease>(std::move(lease));
  on_pool([shared, ctx, done = std::move(done)] { done(shared->release(ctx)); });
}

void start_renew(const Lease& lease, const Context& ctx, std::chrono::milliseconds ttl,
                 std::function<void(std::error_code)> done) {
  auto state = detail::Access::state(lease);
  on_pool([state, ctx, ttl, done = std::move(done)] {
    if (!state) return done(make_error_code(errc::not_held));
    try {
      state->renew(ctx, ttl);
      done({});
    } catch (...) {
      done(code_of(std::current_exception()));
    }
  });
}

void start_inspect(const Store& store, const Context& ctx, std::string key,
                   std::function<void(std::error_code, LockInfo)> done) {
  on_pool([s = Store(store), ctx, key = std::move(key), done = std::move(done)]() mutable {
    try {
      done({}, s.inspect(ctx, key));
    } catch (...) {
      done(code_of(std::current_exception()), LockInfo{});
    }
  });
}

}  // namespace dlock
