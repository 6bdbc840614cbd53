// dlock/election.hpp: leader election on a lock: one leader at a time, a standby ready to take
// over, the leader's published value, and every change of leader observed in order.
//
// `Election(store, name).campaign(ctx, value)` waits until this caller leads and returns a
// `Leadership`: a lease (RAII: resigns when destroyed; renewed while held; loss and at-risk
// signals) whose term is the grant's fencing token, so terms strictly increase and a resource
// can reject a deposed leader. `proclaim` changes the published value without losing the
// lead; `leader()` reads who leads; `observe()` reports every change of leader or value, from
// the store's notifications where it has them (see `Store::watch`). On etcd:// the key layout
// is that of Go's `concurrency.Election` (`<prefix><name>/<lease hex>`, lowest create revision
// leads), so `etcdctl elect` takes part in the same election and dlock reads its proposal as
// the leader's value; what etcdctl reads as a dlock leader's value is dlock's stored value
// (token and owner metadata), not the bare value (docs/stores/etcd.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "dlock/export.hpp"
#include "dlock/lease.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Who leads an election.
struct LeaderInfo {
  /// The value the leader published (its `campaign` value or its last `proclaim`).
  std::string value{};
  /// The leader's term: its grant's fencing token (strictly increasing per election).
  std::uint64_t term = 0;
  /// The leader's metadata (host, pid, when it won).
  OwnerInfo owner{};
  /// Its remaining TTL as the store sees it (-1 ms when unknown).
  std::chrono::milliseconds ttl_remaining{-1};
};

/// This caller's lead of an election. Move-only; destroying it resigns.
class DLOCK_API Leadership {
 public:
  Leadership() = default;
  Leadership(Leadership&&) noexcept = default;
  Leadership& operator=(Leadership&&) noexcept = default;

  /// The term (the grant's fencing token).
  std::uint64_t term() const noexcept { return lease_.fencing_token(); }
  /// The value published now.
  const std::string& value() const noexcept { return value_; }
  /// Whether this caller still leads (held, not lost, within its validity).
  bool leading() const noexcept { return lease_.held(); }
  /// Stopped when the lead is lost (not on resign).
  std::stop_token lost_token() const noexcept { return lease_.lost_token(); }
  /// Stopped while the lead is at risk (see `Lease::at_risk_token`).
  std::stop_token at_risk_token() const noexcept { return lease_.at_risk_token(); }
  /// The underlying lease (fencing token, validity, callbacks).
  const Lease& lease() const noexcept { return lease_; }
  Lease& lease() noexcept { return lease_; }

  /// Publishes `value` without giving up the lead (one round trip). Throws `Error`:
  /// `not_held` (the lead was lost), `unsupported` (a store without it), `invalid_argument`.
  void proclaim(const Context& ctx, std::string value);
  /// Gives up the lead (one round trip); the next candidate takes over. Never throws.
  ReleaseResult resign(const Context& ctx = {}) noexcept { return lease_.release(ctx); }

 private:
  friend class Election;
  Leadership(Lease lease, std::string value) : lease_(std::move(lease)), value_(std::move(value)) {}
  Lease lease_;
  std::string value_;
};

/// A named election in a store. Thread-safe; cheap to copy the store into many.
class DLOCK_API Election {
 public:
  /// The election `name` in `store`. `opts` applies to each campaign (TTL: how long a dead
  /// leader keeps the lead; retries; metadata is replaced by the value); auto-renewal is on.
  Election(Store store, std::string name, LockOptions opts = {});

  /// Waits until this caller leads (as `ctx` allows: campaigns queue in arrival order on FIFO
  /// stores) and publishes `value`. Throws `Error` like `Store::acquire`.
  Leadership campaign(const Context& ctx, std::string value);
  /// Who leads now (one round trip), or nothing.
  std::optional<LeaderInfo> leader(const Context& ctx);
  /// Calls `cb` with the current leader (or nothing), then at every change of leader or of the
  /// published value, in order, until `cb` returns false or `ctx` ends. Blocks the calling
  /// thread. Throws `Error` for store failures that outlast the context.
  void observe(const Context& ctx, const std::function<bool(const std::optional<LeaderInfo>&)>& cb);

  /// The election's name.
  const std::string& name() const noexcept { return name_; }

 private:
  Store store_;
  std::string name_;
  LockOptions opts_;
};

}  // namespace dlock
