#include "etcd/watch_hub.hpp"

#include "etcd/client.hpp"

namespace dlock::detail::etcd {

using clock = std::chrono::steady_clock;

WatchHub::WatchHub(Client& client) : client_(client) {}

WatchHub::~WatchHub() { close(); }

void WatchHub::close() noexcept {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    for (auto& [id, s] : slots_) {
      s->fired = true;
      s->broken = true;
      s->ended = true;
      s->cv.notify_all();
    }
    slots_.clear();
  }
  std::lock_guard wl(write_mu_);
  if (open_) dead_.push_back(std::move(open_));
  for (auto& s : dead_) {
    s->cc->TryCancel();
    if (s->reader.joinable()) s->reader.join();
  }
  dead_.clear();
}

void WatchHub::read_loop(Open* s) {
  etcdserverpb::WatchResponse resp;
  std::vector<std::pair<Listener, Note>> notes;
  while (s->rw->Read(&resp)) {
    bool renew_stream = false;
    if (resp.watch_id() == -1 && resp.canceled()) {
      // etcd refused a create and names no watch (3.4 answers -1), e.g. the stream's auth
      // token expired: every later create would fail too. A new stream (with a fresh token)
      // ends and re-creates every watch of this one.
      if (client_.uses_auth()) client_.token_refused();
      s->cc->TryCancel();
      continue;
    }
    {
      std::lock_guard lk(mu_);
      auto it = slots_.find(resp.watch_id());
      if (it == slots_.end()) continue;
      auto held = it->second;  // Keeps the slot alive if it is erased below.
      Slot& slot = *held;
      if (resp.created()) slot.created = true;
      for (auto& ev : resp.events()) {
        if (ev.type() != mvccpb::Event::DELETE && !slot.every_event) continue;
        slot.fired = true;
        if (slot.listener) notes.emplace_back(slot.listener, Note::deleted);
      }
      if (resp.canceled() || resp.compact_revision() != 0) {
        slot.fired = true;  // etcd ended the watch: re-read.
        slot.ended = true;
        slot.cancel_reason = resp.cancel_reason();
        if (slot.listener) {
          notes.emplace_back(slot.listener, Note::ended);
          slots_.erase(it);
          // Refused (the stream's auth token expired): only a new stream gets a fresh one.
          renew_stream = !slot.cancel_reason.empty() && client_.uses_auth();
          if (renew_stream) client_.token_refused();
        }
      }
      slot.cv.notify_all();
    }
    if (renew_stream) s->cc->TryCancel();  // Ends this loop; every watch then ends.
    for (auto& [listener, note] : notes) listener(note);
    notes.clear();
  }
  {
    std::lock_guard lk(mu_);
    s->broken = true;
    for (auto& [id, slot] : slots_) {
      slot->fired = true;
      slot->broken = true;
      slot->ended = true;
      slot->cv.notify_all();
      if (slot->listener) notes.emplace_back(slot->listener, Note::ended);
    }
    slots_.clear();
  }
  for (auto& [listener, note] : notes) listener(note);
  s->rw->Finish();
}

Reply<bool> WatchHub::write(const etcdserverpb::WatchRequest& req,
                            const std::shared_ptr<Slot>& slot) {
  std::lock_guard wl(write_mu_);
  {
    std::lock_guard lk(mu_);
    if (closed_) return {false, fail(errc::closed)};
    if (open_ && open_->broken) dead_.push_back(std::move(open_));
  }
  for (auto& d : dead_) {
    d->cc->TryCancel();
    if (d->reader.joinable()) d->reader.join();
  }
  dead_.clear();
  if (!open_) {
    if (!req.has_create_request()) return {false, {}};  // Nothing to cancel on a new stream.
    auto s = std::make_unique<Open>();
    s->cc = std::make_unique<grpc::ClientContext>();
    if (auto f = client_.prepare_stream(*s->cc)) return {false, std::move(f)};
    s->rw = client_.watch_stub().Watch(s->cc.get());
    s->reader = std::thread([this, p = s.get()] { read_loop(p); });
    open_ = std::move(s);
  }
  if (slot) {
    // Registered only now, after older streams' readers ended: their cleanup cannot touch it.
    std::lock_guard lk(mu_);
    slots_[slot->id] = slot;
  }
  if (open_->rw->Write(req)) return {true, {}};
  open_->cc->TryCancel();  // The reader then ends every slot of this stream.
  return {false, {}};
}

Reply<std::shared_ptr<WatchHub::Slot>> WatchHub::watch_deletes(const Context& ctx,
                                                               const std::string& key) {
  return watch_confirmed(ctx, key, {}, false);
}

Reply<std::shared_ptr<WatchHub::Slot>> WatchHub::watch_changes(const Context& ctx,
                                                               const std::string& key,
                                                               const std::string& range_end) {
  return watch_confirmed(ctx, key, range_end, true);
}

Reply<std::shared_ptr<WatchHub::Slot>> WatchHub::watch_confirmed(const Context& ctx,
                                                                 const std::string& key,
                                                                 const std::string& range_end,
                                                                 bool every_event) {
  const auto limit =
      clock::now() + std::min<clock::duration>(ctx.remaining(), client_.request_timeout());
  bool refused = false;
  for (;;) {
    auto slot = std::make_shared<Slot>();
    slot->every_event = every_event;
    {
      std::lock_guard lk(mu_);
      if (closed_) return {nullptr, fail(errc::closed)};
      slot->id = next_id_++;
    }
    etcdserverpb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    if (!range_end.empty()) c->set_range_end(range_end);
    if (!every_event) c->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    c->set_watch_id(slot->id);
    auto w = write(req, slot);
    if (!w.ok()) return {nullptr, std::move(w.failure)};
    const bool written = w.value;
    std::unique_lock lk(mu_);
    if (written) {
      slot->cv.wait_until(lk, ctx.stop_token(), limit,
                          [&] { return slot->created || slot->broken; });
    }
    if (slot->created && !slot->broken) {
      if (!slot->fired || slot->cancel_reason.empty()) return {slot, {}};
      slots_.erase(slot->id);
      if (!client_.uses_auth() || refused) {
        return {nullptr, fail(errc::auth_failed, "etcd refused the watch: " + slot->cancel_reason)};
      }
      // The stream's token expired: a new stream (with a fresh token) and one more try.
      refused = true;
      client_.token_refused();
      lk.unlock();
      std::lock_guard wl(write_mu_);
      if (open_) {
        open_->cc->TryCancel();
        std::lock_guard relock(mu_);
        open_->broken = true;
      }
      continue;
    }
    slots_.erase(slot->id);
    lk.unlock();
    if (ctx.stop_requested()) return {nullptr, fail(errc::cancelled)};
    if (clock::now() >= limit) {
      if (!ctx.done()) {
        // No confirmation within the request timeout: the stream is sick; its waits re-read.
        std::lock_guard wl(write_mu_);
        if (open_) open_->cc->TryCancel();
      }
      return {nullptr, fail(ctx.expired() ? errc::timeout : errc::unavailable,
                            "etcd did not confirm the watch in time")};
    }
    // The stream broke before the confirmation: retry on a new stream after a short pause.
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock pause(m);
    cv.wait_for(pause, ctx.stop_token(), std::chrono::milliseconds(50), [] { return false; });
  }
}

Reply<std::shared_ptr<WatchHub::Slot>> WatchHub::watch_deletes_from(const std::string& key,
                                                                    std::int64_t start_revision,
                                                                    Listener listener) {
  auto slot = std::make_shared<Slot>();
  slot->listener = std::move(listener);
  {
    std::lock_guard lk(mu_);
    if (closed_) return {nullptr, fail(errc::closed)};
    slot->id = next_id_++;
  }
  etcdserverpb::WatchRequest req;
  auto* c = req.mutable_create_request();
  c->set_key(key);
  c->set_start_revision(start_revision);
  c->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  c->set_watch_id(slot->id);
  auto w = write(req, slot);
  if (w.ok() && w.value) return {slot, {}};
  std::lock_guard lk(mu_);
  slots_.erase(slot->id);
  return {nullptr, std::move(w.failure)};
}

bool WatchHub::wait(Slot& slot, const Context& ctx, clock::time_point until) {
  std::unique_lock lk(mu_);
  return slot.cv.wait_until(lk, ctx.stop_token(), std::min(until, ctx.deadline()),
                            [&] { return slot.fired; });
}

bool WatchHub::rearm(Slot& slot) {
  std::lock_guard lk(mu_);
  if (slot.ended) return false;
  slot.fired = false;
  return true;
}

void WatchHub::cancel(const std::shared_ptr<Slot>& slot) noexcept {
  if (!slot) return;
  {
    std::lock_guard lk(mu_);
    if (slots_.erase(slot->id) == 0 && slot->broken) return;
  }
  etcdserverpb::WatchRequest req;
  req.mutable_cancel_request()->set_watch_id(slot->id);
  (void)write(req, nullptr);
}

}  // namespace dlock::detail::etcd
