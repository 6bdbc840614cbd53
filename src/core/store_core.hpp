// The part of a store object that every store shares: the waiting loop, the key-based table
// of held leases, close(), metrics. One per `dlock::open`; `Store` handles share it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/backend.hpp"
#include "core/lease_state.hpp"
#include "core/local_queue.hpp"
#include "dlock/lease.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

class StoreCore {
 public:
  StoreCore(std::shared_ptr<Backend> backend, std::string redacted_url);
  /// Releases the key-based holds (the backend lives on while leases do).
  ~StoreCore();

  std::string_view scheme() const { return shared_->scheme; }
  const std::string& url() const { return url_; }
  Capabilities capabilities() const { return caps_; }
  Backend& backend() { return *shared_->backend; }
  const std::shared_ptr<CoreShared>& shared() const { return shared_; }
  bool closed() const;
  /// Throws `errc::closed` when closed.
  void check_open(std::string_view key, std::string_view step) const;

  /// The waiting loop. With `single_attempt`, one attempt and an empty result on loss.
  std::optional<Lease> acquire(const Context& ctx, std::string_view key, const LockOptions& opts,
                               bool single_attempt);

  LockInfo inspect(const Context& ctx, std::string_view key);
  std::vector<LockInfo> list(const Context& ctx, std::string_view prefix);

  // ---- key-based table: this object's holds, by key ----
  /// A hold: owned (the table keeps the lease) or lent (a `with_lock` scope keeps it).
  struct Hold {
    Lease owned;
    std::shared_ptr<LeaseState> state;
  };
  /// Keeps `lease` as this object's hold of its key (replacing a stale one).
  void hold(Lease lease);
  /// Records a hold whose lease someone else keeps (replacing a stale one).
  void lend(std::shared_ptr<LeaseState> state);
  /// Removes and returns the hold of `key` (empty state when none).
  Hold take(std::string_view key);
  /// Removes the hold of `key` only if it is `state`.
  void forget(std::string_view key, const LeaseState* state);
  /// The state of this object's hold of `key`, or nullptr.
  std::shared_ptr<LeaseState> find(std::string_view key) const;

  void close();

 private:
  std::shared_ptr<CoreShared> shared_;
  Capabilities caps_;
  std::string url_;
  LocalQueue line_;  // Local waiters of one key take turns talking to the store.
  mutable std::mutex mu_;
  bool closed_ = false;
  std::map<std::string, Hold, std::less<>> held_;
};

/// Wraps a backend in a store core after installing its loss sink.
std::shared_ptr<StoreCore> make_store_core(std::shared_ptr<Backend> backend,
                                           std::string redacted_url);

}  // namespace dlock::detail
