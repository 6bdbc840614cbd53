// What both etcd stores share: the client, the table of this object's grants (lease, create
// revision, stored value, validity), release, extend, and the per-acquisition lease.
//
// Every acquisition gets its own etcd lease with the acquisition's TTL, so a lock that is not
// renewed expires on its own (as on every dlock store), and two acquisitions of one name by
// one store object never share a key. Renewal is a keep-alive of that lease on the shared
// keep-alive stream, after checking that the key is still ours.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/backend.hpp"
#include "etcd/client.hpp"
#include "etcd/lease_pool.hpp"

namespace dlock::detail::etcd {

/// A grant this store object holds.
struct Grant {
  std::string etcd_key;  ///< The key in etcd (with prefix; the waiter key for etcd://).
  std::string value;     ///< What we stored (token, newline, metadata).
  std::int64_t lease = 0;
  std::int64_t lease_ttl = 0;  ///< Seconds, as etcd granted it.
  std::int64_t create_revision = 0;
  std::chrono::steady_clock::time_point valid_until;    ///< Client-side validity (sent + ttl).
  std::chrono::steady_clock::time_point lease_expires;  ///< Earliest etcd-side lease expiry.
};

class EtcdBackend : public Backend, public std::enable_shared_from_this<EtcdBackend> {
 public:
  EtcdBackend(std::shared_ptr<Client> client, std::string prefix);
  ~EtcdBackend() override;

  std::string_view scheme() const override { return client_->scheme(); }
  bool release(const Context& ctx, const std::string& key, const std::string& token) override;
  bool extend(const Context& ctx, const std::string& key, const std::string& token,
              std::chrono::milliseconds ttl) override;
  void close() noexcept override;

  Client& client() { return *client_; }
  LeasePool& lease_pool() { return pool_; }
  const std::string& prefix() const { return prefix_; }
  void check_open(std::string_view key, std::string_view step) const;
  /// Records a won acquisition.
  void add_grant(const std::string& token, Grant g);

  /// The value stored in a lock key: the token, a newline, the owner metadata.
  static std::string make_value(const AcquireRequest& req);
  /// The metadata part of a stored value ("" for foreign keys such as etcdctl's).
  static std::string metadata_of(const std::string& value);

 protected:
  /// The compare that proves `g` still holds its key (etcd+txn: the value; etcd://: the
  /// create revision).
  virtual void add_holder_compare(etcdserverpb::TxnRequest& txn, const Grant& g) const = 0;
  /// The remaining TTL of `lease` (one round trip), or nullopt.
  std::optional<std::chrono::milliseconds> lease_remaining(const Context& ctx, std::int64_t lease,
                                                           std::string_view key);

 private:
  std::shared_ptr<Client> client_;
  std::string prefix_;
  LeasePool pool_;
  std::mutex mu_;
  std::map<std::string, Grant> grants_;  // By token.
};

/// The lease of one acquisition in progress: taken from the pool or granted at the first
/// attempt, kept alive in the background while the acquisition waits, revoked (or pooled)
/// when it ends without a win.
class AttemptLease {
 public:
  using clock = std::chrono::steady_clock;
  AttemptLease(Client& client, LeasePool& pool, std::chrono::milliseconds ttl)
      : client_(client), pool_(pool), ttl_(ttl) {}
  ~AttemptLease();
  AttemptLease(const AttemptLease&) = delete;
  AttemptLease& operator=(const AttemptLease&) = delete;

  /// Takes a pooled lease or grants one (one round trip) if there is none. Returns its id.
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
