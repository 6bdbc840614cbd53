#include "etcd/etcd_backend.hpp"

#include <cstdint>
#include <cstdio>

#include "etcd/keepalive_stream.hpp"
#include "etcd/watch_hub.hpp"

namespace dlock::detail::etcd {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

EtcdGrant::~EtcdGrant() {
  if (loss_watch_) loss_watch_->remove(*this);
}

EtcdBackend::EtcdBackend(std::shared_ptr<Client> client, std::string scheme, std::string prefix)
    : client_(std::move(client)),
      scheme_(std::move(scheme)),
      prefix_(std::move(prefix)),
      loss_watch_(std::make_shared<LossWatch>(*client_)) {
  // A keep-alive answered with TTL <= 0 for a held grant's lease: lost, whatever the watch saw.
  client_->keepalive().on_lease_gone([w = std::weak_ptr<LossWatch>(loss_watch_)](std::int64_t id) {
    if (auto watch = w.lock()) watch->lease_gone(id);
  });
}

EtcdBackend::~EtcdBackend() { close(); }

void EtcdBackend::close() noexcept {
  loss_watch_->close();
  // Idle pooled leases carry no key: revoke them rather than leave them to expire (close
  // waits a moment for the revokes to get through).
  try {
    for (auto& e : pool_.drain()) client_->revoke_later(e.id);
  } catch (...) {
  }
  client_->close();
}

namespace {

std::string mode_word(const LockMode& mode) {
  switch (mode.kind) {
    case LockMode::Kind::exclusive:
      return {};
    case LockMode::Kind::shared:
      return " shared";
    case LockMode::Kind::permits:
      return " permits " + std::to_string(mode.count) + " " + std::to_string(mode.limit);
  }
  return {};
}

}  // namespace

std::string EtcdBackend::make_value(const AcquireRequest& req) {
  return req.token + mode_word(req.mode) + "\n" + req.metadata;
}

LockMode EtcdBackend::mode_of(const std::string& value) {
  const auto nl = value.find('\n');
  if (nl == std::string::npos) return LockMode::exclusive();
  const std::string_view head(value.data(), nl);
  const auto sp = head.find(' ');
  if (sp == std::string_view::npos) return LockMode::exclusive();
  const auto word = head.substr(sp + 1);
  if (word == "shared") return LockMode::shared();
  unsigned long count = 0, limit = 0;
  if (std::sscanf(std::string(word).c_str(), "permits %lu %lu", &count, &limit) == 2 && count > 0 &&
      limit >= count && limit <= UINT32_MAX) {
    return LockMode::permits(static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(limit));
  }
  return LockMode::exclusive();  // Unknown: the safe reading (it holds alone).
}

std::string EtcdBackend::with_mode(const std::string& value, const LockMode& mode) {
  const auto nl = value.find('\n');
  const std::string head = value.substr(0, nl);
  const std::string token = head.substr(0, head.find(' '));
  return token + mode_word(mode) + (nl == std::string::npos ? "\n" : value.substr(nl));
}

std::string EtcdBackend::metadata_of(const std::string& value) {
  auto nl = value.find('\n');
  return nl == std::string::npos ? value : value.substr(nl + 1);
}

namespace {

// A watch of one lock's key range on the client's watch stream. When the watch ends (the
// stream broke, etcd cancelled it) it is made again before `wait` reports the change, so the
// caller's next read happens after the new subscription.
class EtcdChangeWatch final : public Backend::ChangeWatch {
 public:
  EtcdChangeWatch(const EtcdBackend& backend, WatchHub& hub, std::string key,
                  std::pair<std::string, std::string> range)
      : backend_(backend), hub_(hub), key_(std::move(key)), range_(std::move(range)) {
    subscribe(Context::with_timeout(backend_.request_timeout()));
  }
  ~EtcdChangeWatch() override { hub_.cancel(slot_); }

  bool wait(const Context& ctx, std::chrono::steady_clock::time_point until) override {
    if (!hub_.wait(*slot_, ctx, until)) return false;
    if (!hub_.rearm(*slot_)) {
      hub_.cancel(slot_);
      slot_.reset();
      subscribe(ctx);
    }
    return true;
  }

 private:
  void subscribe(const Context& ctx) {
    slot_ = backend_.checked(hub_.watch_changes(ctx, range_.first, range_.second), key_, "watch");
  }
  const EtcdBackend& backend_;
  WatchHub& hub_;
  const std::string key_;
  const std::pair<std::string, std::string> range_;
  std::shared_ptr<WatchHub::Slot> slot_;
};

}  // namespace

std::unique_ptr<Backend::ChangeWatch> EtcdBackend::watch_changes(const std::string& key) {
  return std::make_unique<EtcdChangeWatch>(*this, client_->watches(), key, key_range(key));
}

GrantResult EtcdBackend::set_metadata(const Context& ctx, GrantState& grant,
                                      const std::string& metadata) noexcept {
  auto& g = static_cast<EtcdGrant&>(grant);
  return guarded([&] {
    std::lock_guard writing(g.writes);
    const std::string old = g.value();
    const std::string fresh = old.substr(0, old.find('\n')) + "\n" + metadata;
    etcdserverpb::TxnRequest txn;
    add_holder_compare(txn, g);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(g.etcd_key);
    put->set_value(fresh);
    put->set_ignore_lease(true);  // Keeps whichever lease a renewal moved the key to.
    if (!checked(client_->txn(ctx, txn), g.key, "proclaim").succeeded()) {
      return GrantResult::not_held();
    }
    g.set_value(fresh);
    return GrantResult::held();
  });
}

GrantResult EtcdBackend::release(const Context& ctx, GrantState& grant) noexcept {
  auto& g = static_cast<EtcdGrant&>(grant);
  loss_watch_->remove(g);  // Our own delete is no loss.
  return guarded([&] {
    std::lock_guard writing(g.writes);
    const auto lease = g.lease();
    // Conditional on still holding the key: a stale release never deletes a newer holder's
    // key (etcd#22082). The lease is revoked afterwards, off the caller's path.
    etcdserverpb::TxnRequest txn;
    add_holder_compare(txn, g);
    txn.add_success()->mutable_request_delete_range()->set_key(g.etcd_key);
    auto r = client_->txn(ctx, txn);
    if (!r.ok()) {
      client_->revoke_later(lease.id);  // Deletes the key once it gets through.
      return GrantResult::failed(r.code());
    }
    const bool deleted = r.value.succeeded();
    // The lease carries no key now: keep it for the next acquisition of this TTL.
    if (!deleted || !pool_.give({lease.id, lease.ttl_seconds, lease.expires})) {
      client_->revoke_later(lease.id);
    }
    // A key that outlived our validity (etcd rounds TTLs up) was not ours to report as held.
    return GrantResult::held_if(deleted && clock::now() < lease.valid_until);
  });
}

GrantResult EtcdBackend::extend(const Context& ctx, GrantState& grant, milliseconds ttl) noexcept {
  return guarded([&] { return extend_grant(ctx, static_cast<EtcdGrant&>(grant), ttl); });
}

GrantResult EtcdBackend::extend_grant(const Context& ctx, EtcdGrant& g, milliseconds ttl) {
  std::lock_guard writing(g.writes);
  const auto sent = clock::now();
  auto lease = g.lease();
  if (sent >= lease.valid_until) return GrantResult::not_held();
  const std::int64_t seconds = lease_seconds(ttl);
  const std::string& key = g.key;
  etcdserverpb::TxnRequest check;
  add_holder_compare(check, g);
  if (seconds <= lease.ttl_seconds) {
    // The keep-alive goes out with the ownership check (pipelined: one round trip).
    auto ticket = checked(client_->keepalive().send(lease.id), key, "renew");
    bool ours = checked(client_->txn(ctx, check), key, "renew").succeeded();
    std::int64_t left = checked(client_->keepalive().await(ctx, ticket), key, "renew");
    if (!ours || left <= 0) return GrantResult::not_held();
    lease.expires = sent + std::chrono::seconds(lease.ttl_seconds);
  } else {
    // etcd leases keep their TTL: move the key to a new lease with the longer TTL (the create
    // revision, hence the fencing token, stays).
    auto fresh = checked(client_->grant(ctx, seconds), key, "grant lease");
    auto* put = check.add_success()->mutable_request_put();
    put->set_key(g.etcd_key);
    put->set_ignore_value(true);
    put->set_lease(fresh.id());
    auto moved = client_->txn(ctx, check);
    if (!moved.ok()) client_->revoke_later(fresh.id());
    if (!checked(std::move(moved), key, "renew").succeeded()) {
      client_->revoke_later(fresh.id());
      return GrantResult::not_held();
    }
    client_->revoke_later(lease.id);
    lease.id = fresh.id();
    lease.ttl_seconds = fresh.ttl();
    lease.expires = sent + std::chrono::seconds(lease.ttl_seconds);
  }
  lease.valid_until = sent + ttl;
  g.set_lease(lease);
  return GrantResult::held();
}

Backend::Holder EtcdBackend::holder_of(const Context& ctx, const mvccpb::KeyValue& kv,
                                       std::string_view key) {
  Holder h{mode_of(kv.value()), static_cast<std::uint64_t>(kv.create_revision()), milliseconds(-1),
           metadata_of(kv.value())};
  if (kv.lease() != 0) {
    auto r = checked(client_->time_to_live(ctx, kv.lease()), key, "lease time to live");
    h.ttl_remaining = milliseconds(std::max<std::int64_t>(0, r.ttl()) * 1000);
  }
  return h;
}

// ---- AttemptLease ----

AttemptLease::~AttemptLease() {
  keep_alive(false);
  if (id_ != 0) client_.revoke_later(id_);
}

std::int64_t AttemptLease::ensure(const Context& ctx, std::string_view key) {
  if (id_ != 0) return id_;
  if (auto e = pool_.take(lease_seconds(ttl_))) {
    id_ = e->id;
    ttl_seconds_ = e->ttl_seconds;
    expires_ = e->expires;
    reused_ = true;
    return id_;
  }
  const auto sent = clock::now();
  auto r = backend_.checked(client_.grant(ctx, lease_seconds(ttl_)), key, "grant lease");
  id_ = r.id();
  ttl_seconds_ = r.ttl();
  expires_ = sent + std::chrono::seconds(ttl_seconds_);
  return id_;
}

void AttemptLease::recycle() noexcept {
  keep_alive(false);
  if (id_ == 0) return;
  try {
    if (!pool_.give({id_, ttl_seconds_, expires_})) client_.revoke_later(id_);
  } catch (...) {
  }
  id_ = 0;
}

void AttemptLease::drop() {
  keep_alive(false);
  id_ = 0;
  reused_ = false;
}

void AttemptLease::keep_alive(bool on) {
  if (on && !kept_ && id_ != 0) {
    client_.keepalive().keep(id_, ttl_seconds_);
    kept_ = true;
  } else if (!on && kept_) {
    client_.keepalive().forget(id_);
    kept_ = false;
  }
}

void AttemptLease::hand_over() {
  keep_alive(false);
  id_ = 0;
}

void AttemptLease::revoke_now(const Context& ctx) noexcept {
  keep_alive(false);
  if (id_ == 0) return;
  if (client_.revoke(ctx, id_)) client_.revoke_later(id_);
  id_ = 0;
}

}  // namespace dlock::detail::etcd
