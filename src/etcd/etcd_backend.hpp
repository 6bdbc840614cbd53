// What both etcd stores share: the client, the state of a grant (lease, create revision,
// stored value, validity), release, extend, the watch of held keys that reports a loss at
// once, and the per-acquisition lease.
//
// Every acquisition gets its own etcd lease with the acquisition's TTL, so a lock that is not
// renewed expires on its own (as on every dlock store), and two acquisitions of one name by
// one store object never share a key. Renewal is a keep-alive of that lease on the shared
// keep-alive stream, after checking that the key is still ours.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "core/backend.hpp"
#include "etcd/client.hpp"
#include "etcd/lease_pool.hpp"
#include "etcd/loss_watch.hpp"

namespace dlock::detail::etcd {

/// One grant: its key in etcd, what we stored there, and the lease that carries it. The lease
/// fields change when a renewal moves the key to a longer lease (under `mu`). While it is
/// registered with a `LossWatch` (from the win to its release), a DELETE of its key reports it
/// lost; its destructor unregisters it.
struct EtcdGrant final : GrantState {
  using clock = std::chrono::steady_clock;
  EtcdGrant(std::string key, std::string etcd_key, std::string value, std::int64_t revision)
      : key(std::move(key)),
        etcd_key(std::move(etcd_key)),
        create_revision(revision),
        value_(std::move(value)) {}
  ~EtcdGrant() override;
  const std::string key;       ///< The user's key.
  const std::string etcd_key;  ///< The key in etcd (with prefix; the waiter key for etcd://).
  const std::int64_t create_revision;

  /// Held across a renewal, a proclaim and the release, whose compares read the value: they
  /// must not race each other (etcd+txn's compare is on the value a proclaim changes).
  std::mutex writes;

  /// What we stored (token, newline, metadata); a proclaim replaces it.
  std::string value() const {
    std::lock_guard lk(mu);
    return value_;
  }
  void set_value(std::string v) {
    std::lock_guard lk(mu);
    value_ = std::move(v);
  }

  struct Lease {
    std::int64_t id = 0;
    std::int64_t ttl_seconds = 0;   ///< As etcd granted it.
    clock::time_point valid_until;  ///< Client-side validity (sent + ttl).
    clock::time_point expires;      ///< Earliest etcd-side lease expiry.
  };
  Lease lease() const {
    std::lock_guard lk(mu);
    return lease_;
  }
  void set_lease(const Lease& l) {
    std::lock_guard lk(mu);
    lease_ = l;
  }

 private:
  friend class LossWatch;
  mutable std::mutex mu;
  Lease lease_;
  std::string value_;
  // Set and read by the LossWatch under its own mutex.
  std::shared_ptr<LossWatch> loss_watch_;
  std::uint64_t watch_entry_ = 0;
};

class EtcdBackend : public Backend, public std::enable_shared_from_this<EtcdBackend> {
 public:
  EtcdBackend(std::shared_ptr<Client> client, std::string scheme, std::string prefix);
  ~EtcdBackend() override;

  std::string_view scheme() const override { return scheme_; }
  GrantResult release(const Context& ctx, GrantState& grant) noexcept override;
  GrantResult extend(const Context& ctx, GrantState& grant,
                     std::chrono::milliseconds ttl) noexcept override;
  void close() noexcept override;
  /// A confirmed etcd watch of the lock's keys (every put and delete, lease expiry included),
  /// so `Store::watch` wakes at each change instead of polling.
  std::unique_ptr<ChangeWatch> watch_changes(const std::string& key) override;
  /// An election's proclaim: a Put of the new value on the grant's key with its lease, if the
  /// key is still ours (one Txn).
  GrantResult set_metadata(const Context& ctx, GrantState& grant,
                           const std::string& metadata) noexcept override;

  Client& client() { return *client_; }
  std::chrono::milliseconds request_timeout() const { return client_->request_timeout(); }
  LeasePool& lease_pool() { return pool_; }
  /// The watch of this store object's held keys; a session registers each grant it wins.
  LossWatch& loss_watch() { return *loss_watch_; }
  const std::string& prefix() const { return prefix_; }

  /// The answer of a client call, or its failure thrown as an `Error` naming this store, `key`
  /// and `step` (e.g. "dlock: etcd: key 'k': acquire: unavailable: ..."). The one place where
  /// the etcd stores add that context.
  template <class T>
  T checked(Reply<T>&& reply, std::string_view key, std::string_view step) const {
    if (!reply.ok()) throw to_error(reply.failure, scheme_, key, step);
    return std::move(reply.value);
  }
  void checked(const Failure& failure, std::string_view key, std::string_view step) const {
    if (failure) throw to_error(failure, scheme_, key, step);
  }

  /// The value stored in a lock key: the token (followed, for a grant that is not exclusive,
  /// by a space and its mode: `shared` or `permits <count> <limit>`), a newline, the owner
  /// metadata.
  static std::string make_value(const AcquireRequest& req);
  /// The mode a stored value records; exclusive for values without one (foreign clients such
  /// as etcdctl, and dlock's exclusive grants).
  static LockMode mode_of(const std::string& value);
  /// `value` with its mode replaced by `mode` (token and metadata kept).
  static std::string with_mode(const std::string& value, const LockMode& mode);
  /// The metadata part of a stored value. A value without dlock's token line is a foreign
  /// client's (e.g. an `etcdctl elect` proposal): all of it is its text.
  static std::string metadata_of(const std::string& value);

 protected:
  /// The compare that proves `g` still holds its key (etcd+txn: the value; etcd://: the
  /// create revision).
  virtual void add_holder_compare(etcdserverpb::TxnRequest& txn, const EtcdGrant& g) const = 0;
  /// The etcd key range of lock `key`: {first key, range end ("" for the key alone)}.
  virtual std::pair<std::string, std::string> key_range(const std::string& key) const = 0;
  /// The holder that lock key `kv` records: fencing token = its create revision, remaining
  /// TTL = its lease's (one round trip), metadata from its value.
  Holder holder_of(const Context& ctx, const mvccpb::KeyValue& kv, std::string_view key);

 private:
  GrantResult extend_grant(const Context& ctx, EtcdGrant& g, std::chrono::milliseconds ttl);
  std::shared_ptr<Client> client_;
  std::string scheme_, prefix_;
  LeasePool pool_;
  std::shared_ptr<LossWatch> loss_watch_;
};

/// The lease of one acquisition in progress: taken from the pool or granted at the first
/// attempt, kept alive in the background while the acquisition waits, revoked (or pooled)
/// when it ends without a win.
class AttemptLease {
 public:
  using clock = std::chrono::steady_clock;
  AttemptLease(EtcdBackend& backend, std::chrono::milliseconds ttl)
      : backend_(backend), client_(backend.client()), pool_(backend.lease_pool()), ttl_(ttl) {}
  ~AttemptLease();
  AttemptLease(const AttemptLease&) = delete;
  AttemptLease& operator=(const AttemptLease&) = delete;

  /// Takes a pooled lease or grants one (one round trip) if there is none. Returns its id.
  /// Throws `Error` naming `key`.
  std::int64_t ensure(const Context& ctx, std::string_view key);
  /// Forgets the current lease (it expired); the next `ensure` grants a new one.
  void drop();
  std::int64_t id() const { return id_; }
  std::int64_t ttl_seconds() const { return ttl_seconds_; }
  /// Whether the lease was not granted during the current attempt: its expiry must then be
  /// renewed with the attempt (a pipelined keep-alive), so that etcd's validity covers ours.
  bool reused() const { return reused_; }
  void begin_attempt() { reused_ = id_ != 0; }
  /// Keeps the lease alive while waiting (TTL/3), or stops doing so.
  void keep_alive(bool on);
  /// The lease now belongs to a grant: never revoke it here.
  void hand_over();
  /// Revokes the lease now (deleting its keys), bounded by `ctx`. Never throws.
  void revoke_now(const Context& ctx) noexcept;
  /// Returns a lease that carries no key to the pool (or revokes it when the pool is full).
  void recycle() noexcept;

 private:
  EtcdBackend& backend_;
  Client& client_;
  LeasePool& pool_;
  std::chrono::milliseconds ttl_;
  std::int64_t id_ = 0;
  std::int64_t ttl_seconds_ = 0;
  clock::time_point expires_;
  bool reused_ = false;
  bool kept_ = false;
};

}  // namespace dlock::detail::etcd
