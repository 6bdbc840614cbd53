// etcd://: a FIFO mutex with the key layout of Go's concurrency.Mutex, so it excludes and is
// excluded by `etcdctl lock <prefix><name>`. Waiter key `<prefix><name>/<lease id, lower-case
// hex>`; the waiter with the lowest create revision holds; each waiter watches only its
// predecessor; release = Txn `CreateRevision(key)==myRev` then Delete; fencing token = the
// waiter key's create revision. Each acquisition has its own lease, so two acquisitions of one
// name by one store object queue like any two clients.
#include <cstdio>
#include <map>
#include <vector>

#include "core/modes.hpp"
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

// Every waiter under `pfx`, oldest first (for the modes: who holds depends on all of them).
void range_all(etcdserverpb::RangeRequest* r, const std::string& pfx) {
  r->set_key(pfx);
  r->set_range_end(prefix_end(pfx));
  r->set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r->set_sort_order(etcdserverpb::RangeRequest::ASCEND);
}

// How many of `kvs` (oldest first) hold the lock: the longest prefix in which each waiter's
// mode fits with those before it (the rule of core/modes.hpp; served in arrival order, so a
// waiter that does not fit keeps every later one waiting too).
std::size_t holding(const google::protobuf::RepeatedPtrField<mvccpb::KeyValue>& kvs) {
  std::vector<LockMode> held;
  for (const auto& kv : kvs) {
    const LockMode m = EtcdBackend::mode_of(kv.value());
    if (!compatible(m, held)) break;
    held.push_back(m);
  }
  return held.size();
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
      bool won = false;
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
        range_queue(txn.add_success()->mutable_request_range());
        txn.add_failure()->mutable_request_range()->set_key(my_key_);
        range_queue(txn.add_failure()->mutable_request_range());
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
        won = admits(r.responses(1).response_range().kvs());
      } else {
        // Already queued: a read-only Txn (no raft write) checks that our key is still there
        // with our revision (it may have expired while we waited) and reads the holder.
        etcdserverpb::TxnRequest txn;
        compare_create(txn, my_key_, my_rev_);
        range_queue(txn.add_success()->mutable_request_range());
        const auto r = b_->checked(client.txn(ctx, txn), req_.key, "acquire");
        if (!r.succeeded()) {
          my_rev_ = 0;  // Our entry is gone: queue again (at the back).
          drop_watch();
          continue;
        }
        seen_at = r.header().revision();
        won = admits(r.responses(0).response_range().kvs());
      }
      if (won) {
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
    if (!watch_ && my_rev_ != 0 && !exclusive()) {
      // A shared or permits waiter may be let in by any change ahead of it (a release, an
      // expiry, a writer's downgrade): watch every event of the lock's keys, then attempt
      // again at once, so that nothing after the watch is missed.
      watch_ = b_->checked(hub.watch_changes(ctx, pfx_, prefix_end(pfx_)), req_.key, "watch");
      return true;
    }
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
  bool exclusive() const { return req_.mode.kind == LockMode::Kind::exclusive; }
  // What an attempt reads of the queue: the oldest waiter for an exclusive acquisition (it
  // holds when that is itself), every waiter for the other modes.
  void range_queue(etcdserverpb::RangeRequest* r) const {
    if (exclusive()) {
      range_owner(r, pfx_);
    } else {
      range_all(r, pfx_);
    }
  }
  // Whether the queue read by `range_queue` lets this acquisition hold.
  bool admits(const google::protobuf::RepeatedPtrField<mvccpb::KeyValue>& kvs) const {
    if (exclusive()) return !kvs.empty() && kvs[0].create_revision() == my_rev_;
    std::vector<LockMode> ahead;
    for (const auto& kv : kvs) {
      if (kv.create_revision() >= my_rev_) break;
      const LockMode m = EtcdBackend::mode_of(kv.value());
      const std::uint32_t limit = m.kind == LockMode::Kind::permits ? m.limit : 0;
      if (auto conflict = limit_conflict(req_.mode, limit)) {
        throw Error(errc::invalid_argument, std::string(b_->scheme()), req_.key, "acquire",
                    *conflict);
      }
      ahead.push_back(m);
    }
    // The ones ahead hold or wait in order: this one holds if it fits with all of them.
    return compatible(req_.mode, ahead);
  }

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
    c.shared_mode = true;
    c.permits_mode = true;
    c.downgrades = true;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    return std::make_unique<FifoSession>(shared_from_this(), req);
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    // One read of every waiter key, oldest first: the holders are the longest prefix whose
    // modes fit together (one for a mutex), the others wait.
    etcdserverpb::RangeRequest r;
    range_all(&r, prefix() + key + "/");
    const auto resp = checked(client().range(ctx, r), key, "inspect");
    Inspection out{key, {}, {}};
    const std::size_t held = holding(resp.kvs());
    for (std::size_t i = 0; i < held; ++i) {
      out.holders.push_back(holder_of(ctx, resp.kvs(static_cast<int>(i)), key));
    }
    out.waiters = static_cast<std::uint64_t>(resp.kvs_size()) - held;
    return out;
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& p) override {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix() + p);
    r.set_range_end(prefix_end(prefix() + p));
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    const auto resp = checked(client().range(ctx, r), p, "list");
    // Group waiter keys by lock name (oldest first, as read); each name's holders are the
    // longest prefix whose modes fit together, the others wait.
    std::map<std::string, google::protobuf::RepeatedPtrField<mvccpb::KeyValue>> lines;
    for (const auto& kv : resp.kvs()) {
      auto slash = kv.key().rfind('/');
      if (slash == std::string::npos || slash <= prefix().size()) continue;
      auto name = kv.key().substr(prefix().size(), slash - prefix().size());
      if (name.compare(0, p.size(), p) != 0) continue;
      *lines[name].Add() = kv;
    }
    std::vector<Inspection> out;
    for (auto& [name, kvs] : lines) {
      const std::size_t held = holding(kvs);
      Inspection line{name, {}, static_cast<std::uint64_t>(kvs.size()) - held};
      for (std::size_t i = 0; i < held; ++i) {
        line.holders.push_back(holder_of(ctx, kvs[static_cast<int>(i)], name));
      }
      if (!line.holders.empty()) out.push_back(std::move(line));
    }
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    // Deletes every holder's key (each only if it is still the same key), not the waiters'.
    etcdserverpb::RangeRequest r;
    range_all(&r, prefix() + key + "/");
    const auto queue = checked(client().range(ctx, r), key, "force_release");
    const std::size_t held = holding(queue.kvs());
    if (held == 0) return false;
    etcdserverpb::TxnRequest txn;
    for (std::size_t i = 0; i < held; ++i) {
      const auto& kv = queue.kvs(static_cast<int>(i));
      compare_create(txn, kv.key(), kv.create_revision());
      txn.add_success()->mutable_request_delete_range()->set_key(kv.key());
    }
    return checked(client().txn(ctx, txn), key, "force_release").succeeded();
  }

  GrantResult downgrade(const Context& ctx, GrantState& grant) noexcept override {
    // A Put of the same key with the mode `shared`: its create revision (its place in the
    // queue and its fencing token) stays, so no writer gets in between; the readers queued
    // behind it watch every event of the lock's keys and are let in by this Put.
    auto& g = static_cast<EtcdGrant&>(grant);
    return guarded([&] {
      std::lock_guard writing(g.writes);
      const std::string fresh = with_mode(g.value(), LockMode::shared());
      etcdserverpb::TxnRequest txn;
      add_holder_compare(txn, g);
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(g.etcd_key);
      put->set_value(fresh);
      put->set_ignore_lease(true);
      if (!checked(client().txn(ctx, txn), g.key, "downgrade").succeeded()) {
        return GrantResult::not_held();
      }
      g.set_value(fresh);
      return GrantResult::held();
    });
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
