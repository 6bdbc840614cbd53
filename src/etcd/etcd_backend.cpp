#include "etcd/etcd_backend.hpp"

#include "etcd/keepalive_stream.hpp"

namespace dlock::detail::etcd {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

EtcdBackend::EtcdBackend(std::shared_ptr<Client> client, std::string prefix)
    : client_(std::move(client)), prefix_(std::move(prefix)) {}

EtcdBackend::~EtcdBackend() { close(); }

void EtcdBackend::close() noexcept {
  // Idle pooled leases carry no key: revoke them rather than leave them to expire (close
  // waits a moment for the revokes to get through).
  try {
    for (auto& e : pool_.drain()) client_->revoke_later(e.id);
  } catch (...) {
  }
  client_->close();
}

void EtcdBackend::check_open(std::string_view key, std::string_view step) const {
  if (client_->closed()) {
    throw Error(errc::closed, client_->scheme(), std::string(key), std::string(step));
  }
}

void EtcdBackend::add_grant(const std::string& token, Grant g) {
  std::lock_guard lk(mu_);
  grants_[token] = std::move(g);
}

std::string EtcdBackend::make_value(const AcquireRequest& req) {
  return req.token + "\n" + req.metadata;
}

std::string EtcdBackend::metadata_of(const std::string& value) {
  auto nl = value.find('\n');
  return nl == std::string::npos ? std::string() : value.substr(nl + 1);
}

bool EtcdBackend::release(const Context& ctx, const std::string& key, const std::string& token) {
  check_open(key, "release");
  Grant g;
  {
    std::lock_guard lk(mu_);
    auto it = grants_.find(token);
    if (it == grants_.end()) return false;
    g = std::move(it->second);
    grants_.erase(it);
  }
  // Conditional on still holding the key: a stale release never deletes a newer holder's
  // key (etcd#22082). The lease is revoked afterwards, off the caller's path.
  etcdserverpb::TxnRequest txn;
  add_holder_compare(txn, g);
  auto* del = txn.add_success()->mutable_request_delete_range();
  del->set_key(g.etcd_key);
  bool deleted;
  try {
    deleted = client_->txn(ctx, txn, key, "release").succeeded();
  } catch (...) {
    client_->revoke_later(g.lease);  // Deletes the key once it gets through.
    throw;
  }
  // The lease carries no key now: keep it for the next acquisition of this TTL.
  if (!deleted || !pool_.give({g.lease, g.lease_ttl, g.lease_expires})) {
    client_->revoke_later(g.lease);
  }
  // A key that outlived our validity (etcd rounds TTLs up) was not ours to report as held.
  return deleted && clock::now() < g.valid_until;
}

bool EtcdBackend::extend(const Context& ctx, const std::string& key, const std::string& token,
                         milliseconds ttl) {
  check_open(key, "renew");
  const auto sent = clock::now();
  Grant g;
  {
    std::lock_guard lk(mu_);
    auto it = grants_.find(token);
    if (it == grants_.end()) return false;
    g = it->second;
  }
  if (sent >= g.valid_until) return false;
  const std::int64_t seconds = lease_seconds(ttl);
  etcdserverpb::TxnRequest check;
  add_holder_compare(check, g);
  if (seconds <= g.lease_ttl) {
    // The keep-alive goes out with the ownership check (pipelined: one round trip).
    auto ticket = client_->keepalive().send(g.lease, key);
    bool ours = client_->txn(ctx, check, key, "renew").succeeded();
    std::int64_t left = client_->keepalive().await(ctx, ticket, key);
    if (!ours || left <= 0) return false;
    g.lease_expires = sent + std::chrono::seconds(g.lease_ttl);
  } else {
    // etcd leases keep their TTL: move the key to a new lease with the longer TTL (the create
    // revision, hence the fencing token, stays).
    auto fresh = client_->grant(ctx, seconds, key);
    auto* put = check.add_success()->mutable_request_put();
    put->set_key(g.etcd_key);
    put->set_ignore_value(true);
    put->set_lease(fresh.id());
    bool moved;
    try {
      moved = client_->txn(ctx, check, key, "renew").succeeded();
    } catch (...) {
      client_->revoke_later(fresh.id());
      throw;
    }
    if (!moved) {
      client_->revoke_later(fresh.id());
      return false;
    }
    client_->revoke_later(g.lease);
    g.lease = fresh.id();
    g.lease_ttl = fresh.ttl();
    g.lease_expires = sent + std::chrono::seconds(g.lease_ttl);
  }
  std::lock_guard lk(mu_);
  auto it = grants_.find(token);
  if (it == grants_.end()) return false;  // Released meanwhile.
  it->second.lease = g.lease;
  it->second.lease_ttl = g.lease_ttl;
  it->second.lease_expires = g.lease_expires;
  it->second.valid_until = sent + ttl;
  return true;
}

std::optional<milliseconds> EtcdBackend::lease_remaining(const Context& ctx, std::int64_t lease,
                                                         std::string_view key) {
  if (lease == 0) return std::nullopt;
  auto r = client_->time_to_live(ctx, lease, key);
  if (r.ttl() < 0) return milliseconds(0);
  return milliseconds(r.ttl() * 1000);
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
  auto r = client_.grant(ctx, lease_seconds(ttl_), key);
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
  try {
    client_.revoke(ctx, id_, "");
  } catch (...) {
    client_.revoke_later(id_);
  }
  id_ = 0;
}

}  // namespace dlock::detail::etcd
