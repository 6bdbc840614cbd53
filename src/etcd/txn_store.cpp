// etcd+txn://: the seed's lock. Key `<prefix><name>`; acquire = one Txn
// `If CreateRevision(key)==0 Then Put(key, value, lease) Else Get(key)`; release = Txn on the
// value then Delete; fencing token = the key's create revision; waiting = a watch of the key's
// DELETE events, created (and confirmed) before the attempt that reports a loss.
#include "etcd/keepalive_stream.hpp"
#include "etcd/stores.hpp"
#include "etcd/watch_hub.hpp"

namespace dlock::detail::etcd {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class TxnBackend;

class TxnSession final : public AcquireSession {
 public:
  TxnSession(std::shared_ptr<EtcdBackend> b, const AcquireRequest& req)
      : b_(std::move(b)),
        req_(req),
        etcd_key_(b_->prefix() + req.key),
        value_(EtcdBackend::make_value(req)),
        lease_(*b_, req.ttl) {}

  ~TxnSession() override { b_->client().watches().cancel(watch_); }

  Attempt attempt(const Context& ctx) override {
    const auto sent = clock::now();
    auto& client = b_->client();
    lease_.begin_attempt();
    bool regranted = false;
    for (;;) {
      if (watch_ && !client.watches().rearm(*watch_)) {
        client.watches().cancel(watch_);
        watch_.reset();
      }
      const auto lease = lease_.ensure(ctx, req_.key);
      KeepAliveStream::Ticket ticket;
      if (lease_.reused())
        ticket =
            b_->checked(client.keepalive().send_when_connected(ctx, lease), req_.key, "acquire");
      etcdserverpb::TxnRequest txn;
      auto* cmp = txn.add_compare();
      cmp->set_key(etcd_key_);
      cmp->set_target(etcdserverpb::Compare::CREATE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_create_revision(0);
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(etcd_key_);
      put->set_value(value_);
      put->set_lease(lease);
      txn.add_failure()->mutable_request_range()->set_key(etcd_key_);
      maybe_key_ = true;  // Until the answer says otherwise, the Put may have happened.
      auto reply = client.txn(ctx, txn);
      if (reply.code() == errc::not_held && !regranted) {  // Our lease expired while we waited.
        regranted = true;
        lease_.drop();
        continue;
      }
      const auto r = b_->checked(std::move(reply), req_.key, "acquire");
      std::int64_t rev = 0;
      if (r.succeeded()) {
        rev = r.header().revision();
      } else if (r.responses_size() == 1) {
        const auto& kvs = r.responses(0).response_range().kvs();
        // Our own key: an earlier attempt won but its answer was lost.
        if (!kvs.empty() && kvs[0].value() == value_ && kvs[0].lease() == lease) {
          rev = kvs[0].create_revision();
        }
      }
      if (rev != 0) {
        if (ticket &&
            b_->checked(client.keepalive().await(ctx, ticket), req_.key, "acquire") <= 0) {
          // Our lease had expired (e.g. this process was paused) but etcd had not revoked it
          // yet, so the Put went through: never report that grant (etcd#9921). Revoke the
          // lease (deleting the key) and try again with a new one.
          if (regranted) {
            throw Error(errc::unavailable, std::string(b_->scheme()), req_.key, "acquire",
                        "etcd expired two leases in a row");
          }
          regranted = true;
          lease_.revoke_now(ctx);
          lease_.drop();
          continue;
        }
        client.watches().cancel(watch_);
        watch_.reset();
        auto grant = std::make_unique<EtcdGrant>(req_.key, etcd_key_, value_, rev);
        grant->set_lease({lease, lease_.ttl_seconds(), sent + req_.ttl,
                          sent + std::chrono::seconds(lease_.ttl_seconds())});
        lease_.hand_over();
        b_->loss_watch().add(*grant, r.header().revision());  // Our key was there then.
        return Attempt::won(std::move(grant), static_cast<std::uint64_t>(rev));
      }
      maybe_key_ = false;
      if (!watch_) {
        // Subscribe before reporting the loss, then look once more: a release that landed
        // between the first look and the watch is not missed.
        watch_ = b_->checked(client.watches().watch_deletes(ctx, etcd_key_), req_.key, "watch");
        lease_.keep_alive(true);
        continue;
      }
      return Attempt::lost();
    }
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    if (!watch_) return true;
    return b_->client().watches().wait(*watch_, ctx, until);
  }

  void abandon() noexcept override {
    b_->client().watches().cancel(watch_);
    watch_.reset();
    if (maybe_key_) {
      lease_.revoke_now(Context::with_timeout(std::chrono::seconds(2)));
    } else {
      lease_.recycle();  // It never carried our key.
    }
  }

 private:
  std::shared_ptr<EtcdBackend> b_;
  AcquireRequest req_;
  std::string etcd_key_, value_;
  AttemptLease lease_;
  std::shared_ptr<WatchHub::Slot> watch_;
  bool maybe_key_ = false;
};

class TxnBackend final : public EtcdBackend {
 public:
  using EtcdBackend::EtcdBackend;

  Capabilities capabilities() const override {
    auto c = etcd_capabilities();
    c.fifo = false;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    return std::make_unique<TxnSession>(shared_from_this(), req);
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix() + key);
    const auto resp = checked(client().range(ctx, r), key, "inspect");
    Inspection out{key, {}, {}};
    if (!resp.kvs().empty()) out.holders.push_back(holder_of(ctx, resp.kvs(0), key));
    return out;
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& p) override {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix() + p);
    r.set_range_end(prefix_end(prefix() + p));
    const auto resp = checked(client().range(ctx, r), p, "list");
    std::vector<Inspection> out;
    for (const auto& kv : resp.kvs()) {
      std::string name = kv.key().substr(prefix().size());
      auto h = holder_of(ctx, kv, name);
      out.push_back({std::move(name), {std::move(h)}, {}});
    }
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    etcdserverpb::DeleteRangeRequest d;
    d.set_key(prefix() + key);
    return checked(client().delete_range(ctx, d), key, "force_release").deleted() > 0;
  }

 protected:
  void add_holder_compare(etcdserverpb::TxnRequest& txn, const EtcdGrant& g) const override {
    auto* cmp = txn.add_compare();
    cmp->set_key(g.etcd_key);
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_value(g.value());
  }
  std::pair<std::string, std::string> key_range(const std::string& key) const override {
    return {prefix() + key, {}};
  }
};

}  // namespace

std::shared_ptr<EtcdBackend> make_txn_backend(std::shared_ptr<Client> client, std::string scheme,
                                              std::string prefix) {
  return std::make_shared<TxnBackend>(std::move(client), std::move(scheme), std::move(prefix));
}

Capabilities etcd_capabilities() {
  Capabilities c;
  c.notifies = true;
  c.frees_on_crash = false;
  c.binary_keys = true;
  c.min_ttl = std::chrono::seconds(1);
  c.durable = true;
  c.proclaims = true;
  c.watches = true;
  return c;
}

}  // namespace dlock::detail::etcd
