// etcd://: a FIFO mutex with the key layout of Go's concurrency.Mutex, so it excludes and is
// excluded by `etcdctl lock <prefix><name>`. Waiter key `<prefix><name>/<lease id, lower-case
// hex>`; the waiter with the lowest create revision holds; each waiter watches only its
// predecessor; release = Txn `CreateRevision(key)==myRev` then Delete; fencing token = the
// waiter key's create revision. Each acquisition has its own lease, so two acquisitions of one
// name by one store object queue like any two clients.
#include <cstdio>

#include "etcd/keepalive_stream.hpp"
#include "etcd/stores.hpp"
#include "etcd/watch_hub.hpp"

namespace dlock::detail::etcd {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string hex(std::int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

void compare_create(etcdserverpb::TxnRequest& txn, const std::string& key, std::int64_t rev) {
  auto* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(rev);
}

// The oldest waiter under `pfx`: the holder.
void range_owner(etcdserverpb::RangeRequest* r, const std::string& pfx) {
  r->set_key(pfx);
  r->set_range_end(prefix_end(pfx));
  r->set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r->set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  r->set_limit(1);
}

class FifoSession final : public AcquireSession {
 public:
  FifoSession(std::shared_ptr<EtcdBackend> b, const AcquireRequest& req)
      : b_(std::move(b)),
        req_(req),
        pfx_(b_->prefix() + req.key + "/"),
        value_(EtcdBackend::make_value(req)),
        lease_(*b_, req.ttl) {}

  ~FifoSession() override { b_->client().watches().cancel(watch_); }

  Attempt attempt(const Context& ctx) override {
    const auto sent = clock::now();
    auto& client = b_->client();
    lease_.begin_attempt();
    bool regranted = false;
    for (;;) {
      const auto lease = lease_.ensure(ctx, req_.key);
      KeepAliveStream::Ticket ticket;
      if (lease_.reused())
        ticket =
            b_->checked(client.keepalive().send_when_connected(ctx, lease), req_.key, "acquire");
      std::int64_t owner_rev = 0;
      std::int64_t seen_at = 0;  // The revision at which the holder was read.
      if (my_rev_ == 0) {
        // Enqueue: create our waiter key unless it exists, and read the holder.
        my_key_ = pfx_ + hex(lease);
        etcdserverpb::TxnRequest txn;
        compare_create(txn, my_key_, 0);
        auto* put = txn.add_success()->mutable_request_put();
        put->set_key(my_key_);
        put->set_value(value_);
        put->set_lease(lease);
        range_owner(txn.add_success()->mutable_request_range(), pfx_);
        txn.add_failure()->mutable_request_range()->set_key(my_key_);
        range_owner(txn.add_failure()->mutable_request_range(), pfx_);
        maybe_key_ = true;  // Our waiter key may exist from here on.
        auto reply = client.txn(ctx, txn);
        if (reply.code() == errc::not_held && !regranted) {  // The lease expired while waiting.
          regranted = true;
          lease_.drop();
          continue;
        }
        const auto r = b_->checked(std::move(reply), req_.key, "acquire");
        if (r.responses_size() != 2) bad_answer();
        seen_at = r.header().revision();
        if (r.succeeded()) {
          my_rev_ = r.header().revision();
        } else {
          const auto& mine = r.responses(0).response_range().kvs();
          if (mine.empty()) bad_answer();
          my_rev_ = mine[0].create_revision();
        }
        const auto& owner = r.responses(1).response_range().kvs();
        if (!owner.empty()) owner_rev = owner[0].create_revision();
      } else {
        // Already queued: a read-only Txn (no raft write) checks that our key is still there
        // with our revision (it may have expired while we waited) and reads the holder.
        etcdserverpb::TxnRequest txn;
        compare_create(txn, my_key_, my_rev_);
        range_owner(txn.add_success()->mutable_request_range(), pfx_);
        const auto r = b_->checked(client.txn(ctx, txn), req_.key, "acquire");
        if (!r.succeeded()) {
          my_rev_ = 0;  // Our entry is gone: queue again (at the back).
          drop_watch();
          continue;
        }
        seen_at = r.header().revision();
        const auto& owner = r.responses(0).response_range().kvs();
        if (!owner.empty()) owner_rev = owner[0].create_revision();
      }
      if (owner_rev == my_rev_) {
        if (ticket &&
            b_->checked(client.keepalive().await(ctx, ticket), req_.key, "acquire") <= 0) {
          // Our lease had expired (e.g. this process was paused) but etcd had not revoked it
          // yet, so the Put went through: never report that grant (etcd#9921). Revoke the
          // lease (deleting our waiter key) and queue again with a new one.
          if (regranted) {
            throw Error(errc::unavailable, std::string(b_->scheme()), req_.key, "acquire",
                        "etcd expired two leases in a row");
          }
          regranted = true;
          lease_.revoke_now(ctx);
          lease_.drop();
          my_rev_ = 0;
          drop_watch();
          continue;
        }
        drop_watch();
        auto grant = std::make_unique<EtcdGrant>(req_.key, my_key_, value_, my_rev_);
        grant->set_lease({lease, lease_.ttl_seconds(), sent + req_.ttl,
                          sent + std::chrono::seconds(lease_.ttl_seconds())});
        lease_.hand_over();
        b_->loss_watch().add(*grant, seen_at);
        return Attempt::won(std::move(grant), static_cast<std::uint64_t>(my_rev_));
      }
      // Our queue entry must outlive the wait.
      lease_.keep_alive(true);
      return Attempt::lost();
    }
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    auto& client = b_->client();
    auto& hub = client.watches();
    if (!watch_) {
      if (my_rev_ == 0) return true;
      // The predecessor: the newest waiter older than us. Watch only it (no herd).
      etcdserverpb::RangeRequest r;
      r.set_key(pfx_);
      r.set_range_end(prefix_end(pfx_));
      r.set_max_create_revision(my_rev_ - 1);
      r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
      r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
      r.set_limit(1);
      const auto pred = b_->checked(client.range(ctx, r), req_.key, "wait");
      if (pred.kvs().empty()) return true;  // We may be first now: look again.
      const std::string pred_key = pred.kvs(0).key();
      const auto pred_rev = pred.kvs(0).create_revision();
      // Watch with no start revision (served from etcd's synced group, no 100 ms tick), and
      // only after etcd confirmed it, read the predecessor again: gone means proceed.
      watch_ = b_->checked(hub.watch_deletes(ctx, pred_key), req_.key, "watch");
      etcdserverpb::RangeRequest again;
      again.set_key(pred_key);
      const auto now = b_->checked(client.range(ctx, again), req_.key, "wait");
      if (now.kvs().empty() || now.kvs(0).create_revision() != pred_rev) {
        drop_watch();
        return true;
      }
    }
    if (hub.wait(*watch_, ctx, until)) {
      drop_watch();
      return true;
    }
    return false;
  }

  void abandon() noexcept override {
    drop_watch();
    if (!maybe_key_) {
      lease_.recycle();
      return;
    }
    const auto ctx = Context::with_timeout(std::chrono::seconds(2));
    if (my_rev_ != 0) {
      // Delete our waiter key (only if it is still ours) and keep the lease for later.
      etcdserverpb::TxnRequest txn;
      compare_create(txn, my_key_, my_rev_);
      txn.add_success()->mutable_request_delete_range()->set_key(my_key_);
      if (b_->client().txn(ctx, txn).ok()) {
        lease_.recycle();
        my_rev_ = 0;
        return;
      }
    }
    // Unknown state: revoking our lease deletes whatever key it carries (and nothing else).
    lease_.revoke_now(ctx);
    my_rev_ = 0;
  }

 private:
  [[noreturn]] void bad_answer() {
    throw Error(errc::protocol_error, std::string(b_->scheme()), req_.key, "acquire",
                "unexpected transaction answer");
  }
  void drop_watch() noexcept {
    b_->client().watches().cancel(watch_);
    watch_.reset();
  }

  std::shared_ptr<EtcdBackend> b_;
  AcquireRequest req_;
  std::string pfx_, value_, my_key_;
  std::int64_t my_rev_ = 0;
  AttemptLease lease_;
  std::shared_ptr<WatchHub::Slot> watch_;
  bool maybe_key_ = false;
};

class FifoBackend final : public EtcdBackend {
 public:
  using EtcdBackend::EtcdBackend;

  Capabilities capabilities() const override {
    auto c = etcd_capabilities();
    c.fifo = true;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    return std::make_unique<FifoSession>(shared_from_this(), req);
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    // One read-only Txn: the holder (the oldest waiter key) and how many keys queue.
    const std::string pfx = prefix() + key + "/";
    etcdserverpb::TxnRequest txn;
    range_owner(txn.add_success()->mutable_request_range(), pfx);
    auto* count = txn.add_success()->mutable_request_range();
    count->set_key(pfx);
    count->set_range_end(prefix_end(pfx));
    count->set_count_only(true);
    const auto resp = checked(client().txn(ctx, txn), key, "inspect");
    Inspection out{key, {}, {}};
    if (resp.responses_size() != 2) return out;
    const auto& owner = resp.responses(0).response_range().kvs();
    const auto keys = resp.responses(1).response_range().count();
    out.waiters = static_cast<std::uint64_t>(std::max<std::int64_t>(0, keys - 1));
    if (!owner.empty()) out.holders.push_back(holder_of(ctx, owner[0], key));
    return out;
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& p) override {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix() + p);
    r.set_range_end(prefix_end(prefix() + p));
    const auto resp = checked(client().range(ctx, r), p, "list");
    // Group waiter keys by lock name; the oldest of each name holds it, the others wait.
    struct Line {
      const mvccpb::KeyValue* holder = nullptr;
      std::uint64_t keys = 0;
    };
    std::map<std::string, Line> lines;
    for (const auto& kv : resp.kvs()) {
      auto slash = kv.key().rfind('/');
      if (slash == std::string::npos || slash <= prefix().size()) continue;
      auto name = kv.key().substr(prefix().size(), slash - prefix().size());
      if (name.compare(0, p.size(), p) != 0) continue;
      auto& line = lines[name];
      ++line.keys;
      if (!line.holder || kv.create_revision() < line.holder->create_revision()) line.holder = &kv;
    }
    std::vector<Inspection> out;
    for (auto& [name, line] : lines) {
      out.push_back({name, {holder_of(ctx, *line.holder, name)}, line.keys - 1});
    }
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    etcdserverpb::RangeRequest r;
    range_owner(&r, prefix() + key + "/");
    const auto owner = checked(client().range(ctx, r), key, "force_release");
    if (owner.kvs().empty()) return false;
    etcdserverpb::TxnRequest txn;
    compare_create(txn, owner.kvs(0).key(), owner.kvs(0).create_revision());
    txn.add_success()->mutable_request_delete_range()->set_key(owner.kvs(0).key());
    return checked(client().txn(ctx, txn), key, "force_release").succeeded();
  }

 protected:
  void add_holder_compare(etcdserverpb::TxnRequest& txn, const EtcdGrant& g) const override {
    compare_create(txn, g.etcd_key, g.create_revision);
  }
  std::pair<std::string, std::string> key_range(const std::string& key) const override {
    const std::string pfx = prefix() + key + "/";
    return {pfx, prefix_end(pfx)};
  }
};

}  // namespace

std::shared_ptr<EtcdBackend> make_fifo_backend(std::shared_ptr<Client> client, std::string scheme,
                                               std::string prefix) {
  return std::make_shared<FifoBackend>(std::move(client), std::move(scheme), std::move(prefix));
}

}  // namespace dlock::detail::etcd
