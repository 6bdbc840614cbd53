#include "dlock/semaphore.hpp"

namespace dlock {

Semaphore::Semaphore(Store store, std::string name, std::uint32_t limit, LockOptions opts)
    : store_(std::move(store)), name_(std::move(name)), limit_(limit), opts_(std::move(opts)) {
  if (limit_ == 0) {
    throw Error(errc::invalid_argument, std::string(store_.scheme()), name_, "semaphore",
                "a semaphore needs at least one permit");
  }
  opts_.reentrant = false;
}

LockOptions Semaphore::options(std::uint32_t n) const {
  if (n == 0 || n > limit_) {
    throw Error(errc::invalid_argument, std::string(store_.scheme()), name_, "acquire",
                "asked for " + std::to_string(n) + " of " + std::to_string(limit_) + " permits");
  }
  LockOptions o = opts_;
  o.mode = LockMode::permits(n, limit_);
  return o;
}

Permit Semaphore::acquire(const Context& ctx, std::uint32_t n) {
  return store_.acquire(ctx, name_, options(n));
}

std::optional<Permit> Semaphore::try_acquire(const Context& ctx, std::uint32_t n) {
  return store_.try_acquire(ctx, name_, options(n));
}

std::uint32_t Semaphore::available(const Context& ctx) {
  std::uint64_t used = 0;
  for (const auto& h : store_.inspect(ctx, name_).holders) {
    if (h.mode.kind == LockMode::Kind::permits) used += h.mode.count;
  }
  return used >= limit_ ? 0 : static_cast<std::uint32_t>(limit_ - used);
}

}  // namespace dlock
