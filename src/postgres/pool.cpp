#include "postgres/pool.hpp"

#include "dlock/error.hpp"

namespace dlock::detail::postgres {

Pool::Handle Pool::get(const Context& ctx, const std::string& key, const char* step) {
  const auto limit = std::min(ctx.deadline(), Connection::clock::now() + params_.request_timeout);
  std::unique_lock lk(mu_);
  for (;;) {
    if (closed_) throw Error(errc::unavailable, "postgres", key, step, "store closed");
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      lk.unlock();
      if (c->usable()) return Handle(this, std::move(c));
      c.reset();  // Closed by the server meanwhile: replace it.
      lk.lock();
      --open_;
    }
    if (open_ < size_) {
      ++open_;
      lk.unlock();
      try {
        return Handle(this, Connection::connect(params_, ctx, key, step));
      } catch (...) {
        lk.lock();
        --open_;
        freed_.notify_one();
        throw;
      }
    }
    if (!freed_.wait_until(lk, ctx.stop_token(), limit,
                           [&] { return closed_ || !idle_.empty() || open_ < size_; })) {
      if (ctx.stop_requested()) throw Error(errc::cancelled, "postgres", key, step);
      if (ctx.expired()) throw Error(errc::timeout, "postgres", key, step, "no free connection");
      throw Error(errc::unavailable, "postgres", key, step,
                  "all " + std::to_string(size_) + " connections stayed busy for request_timeout");
    }
  }
}

void Pool::put_back(std::unique_ptr<Connection> c) noexcept {
  std::unique_lock lk(mu_);
  if (closed_ || c->broken()) {
    --open_;
    lk.unlock();
    c.reset();
    freed_.notify_one();
    return;
  }
  idle_.push_back(std::move(c));
  lk.unlock();
  freed_.notify_one();
}

void Pool::close() noexcept {
  std::vector<std::unique_ptr<Connection>> idle;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    idle.swap(idle_);
    open_ -= static_cast<int>(idle.size());
  }
  freed_.notify_all();
}

}  // namespace dlock::detail::postgres
