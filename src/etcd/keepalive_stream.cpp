#include "etcd/keepalive_stream.hpp"

#include "etcd/client.hpp"

namespace dlock::detail::etcd {

using clock = std::chrono::steady_clock;

KeepAliveStream::KeepAliveStream(Client& client) : client_(client) {}

KeepAliveStream::~KeepAliveStream() { close(); }

void KeepAliveStream::close() noexcept {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard wl(write_mu_);
  if (open_) dead_.push_back(std::move(open_));
  for (auto& s : dead_) {
    s->cc->TryCancel();
    if (s->reader.joinable()) s->reader.join();
  }
  dead_.clear();
}

void KeepAliveStream::fail_pending_locked() {
  for (auto& [id, q] : pending_) {
    for (auto& p : q) {
      p->done = true;
      p->failed = true;
    }
  }
  pending_.clear();
  cv_.notify_all();
}

void KeepAliveStream::read_loop(Open* s) {
  etcdserverpb::LeaseKeepAliveResponse resp;
  while (s->rw->Read(&resp)) {
    std::function<void(std::int64_t)> gone;
    {
      std::lock_guard lk(mu_);
      if (resp.ttl() <= 0) gone = on_gone_;
      auto it = pending_.find(resp.id());
      if (it != pending_.end() && !it->second.empty()) {
        auto p = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) pending_.erase(it);
        p->done = true;
        p->ttl = resp.ttl();
        cv_.notify_all();
      }
    }
    if (gone) gone(resp.id());
  }
  {
    std::lock_guard lk(mu_);
    s->broken = true;
    fail_pending_locked();
  }
  s->rw->Finish();
}

Reply<KeepAliveStream::Ticket> KeepAliveStream::send(std::int64_t lease) {
  auto ticket = std::make_shared<Pending>();
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  std::lock_guard wl(write_mu_);
  for (int tries = 0; tries < 2; ++tries) {
    {
      std::lock_guard lk(mu_);
      if (closed_) return {nullptr, fail(errc::closed)};
      if (open_ && open_->broken) dead_.push_back(std::move(open_));
    }
    for (auto& d : dead_) {  // Their readers have ended or are ending.
      d->cc->TryCancel();
      if (d->reader.joinable()) d->reader.join();
    }
    dead_.clear();
    if (!open_) {
      auto s = std::make_unique<Open>();
      s->cc = std::make_unique<grpc::ClientContext>();
      if (auto f = client_.prepare_stream(*s->cc)) return {nullptr, std::move(f)};
      s->rw = client_.lease_stub().LeaseKeepAlive(s->cc.get());
      s->reader = std::thread([this, p = s.get()] { read_loop(p); });
      open_ = std::move(s);
    }
    {
      std::lock_guard lk(mu_);
      pending_[lease].push_back(ticket);
    }
    if (open_->rw->Write(req)) return {ticket, {}};
    // The stream broke: its reader fails the pending requests; retry once on a new stream.
    open_->cc->TryCancel();
    std::lock_guard lk(mu_);
    open_->broken = true;
    ticket = std::make_shared<Pending>();
  }
  return {nullptr, fail(errc::unavailable, "the lease keep-alive stream could not be opened")};
}

Reply<KeepAliveStream::Ticket> KeepAliveStream::send_when_connected(const Context& ctx,
                                                                    std::int64_t lease) {
  // A stream fails fast while the channel is not connected (during a failover it moves to the
  // next member), where a unary call would wait for it: wait first, holding no lock (a
  // renewal's send must not queue behind this), in slices so that close() is not held up.
  auto& channel = client_.channel();
  const auto until =
      clock::now() + std::min<clock::duration>(ctx.remaining(), client_.request_timeout());
  while (channel.GetState(true) != GRPC_CHANNEL_READY && clock::now() < until && !ctx.done()) {
    {
      std::lock_guard lk(mu_);
      if (closed_) break;
    }
    channel.WaitForStateChange(channel.GetState(false),
                               std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  }
  return send(lease);
}

Reply<std::int64_t> KeepAliveStream::await(const Context& ctx, const Ticket& ticket) {
  auto limit = clock::now() + std::min<clock::duration>(ctx.remaining(), client_.request_timeout());
  std::unique_lock lk(mu_);
  cv_.wait_until(lk, ctx.stop_token(), limit, [&] { return ticket->done; });
  if (!ticket->done) {
    lk.unlock();
    if (!ctx.done()) {
      // No answer within the request timeout: the stream (or its connection) is sick. End
      // it so that the next keep-alive opens a new one.
      std::lock_guard wl(write_mu_);
      if (open_) open_->cc->TryCancel();
    }
    if (ctx.stop_requested()) return {0, fail(errc::cancelled)};
    return {0, fail(ctx.expired() ? errc::timeout : errc::unavailable,
                    "no answer on the keep-alive stream")};
  }
  if (ticket->failed) return {0, fail(errc::unavailable, "the lease keep-alive stream broke")};
  return {ticket->ttl, {}};
}

void KeepAliveStream::keep(std::int64_t lease, std::int64_t ttl_seconds) {
  std::lock_guard lk(mu_);
  if (closed_) return;
  auto period = std::chrono::milliseconds(ttl_seconds * 1000 / 3);
  kept_[lease] = Kept{ttl_seconds, clock::now() + period};
  if (!ticker_.joinable()) ticker_ = std::thread([this] { ticker_loop(); });
  cv_.notify_all();
}

void KeepAliveStream::forget(std::int64_t lease) {
  std::lock_guard lk(mu_);
  kept_.erase(lease);
}

void KeepAliveStream::on_lease_gone(std::function<void(std::int64_t)> fn) {
  std::lock_guard lk(mu_);
  on_gone_ = std::move(fn);
}

void KeepAliveStream::ticker_loop() {
  std::unique_lock lk(mu_);
  while (!closed_) {
    auto now = clock::now();
    auto next = now + std::chrono::seconds(1);
    std::vector<std::int64_t> due;
    for (auto& [id, k] : kept_) {
      if (k.next <= now) {
        due.push_back(id);
        k.next = now + std::chrono::milliseconds(k.ttl_seconds * 1000 / 3);
      }
      next = std::min(next, k.next);
    }
    if (!due.empty()) {
      lk.unlock();
      for (auto id : due) {
        (void)send(id);  // The answer is not awaited: a lost lease shows at the next attempt.
      }
      lk.lock();
      continue;
    }
    cv_.wait_until(lk, next);  // keep() and close() notify.
  }
}

}  // namespace dlock::detail::etcd
