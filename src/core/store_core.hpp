// The part of a store object that every store shares: argument checks, the closed check, the
// waiting loop, inspection, the key-based table of held leases, close(), metrics. One per
// `dlock::open`; `Store` handles share it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/backend.hpp"
#include "core/clock.hpp"
#include "core/lease_state.hpp"
#include "core/local_queue.hpp"
#include "core/reentry.hpp"
#include "dlock/lease.hpp"
#include "dlock/multi_lease.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

class RenewalScheduler;

class StoreCore {
 public:
  /// Wraps `backend`; its leases measure time on `clock` and renew through `scheduler`.
  StoreCore(std::shared_ptr<Backend> backend, std::string redacted_url, const Clock& clock,
            RenewalScheduler& scheduler);
  /// Releases the key-based holds (the backend lives on while leases do).
  ~StoreCore();

  std::string_view scheme() const { return shared_->scheme; }
  const std::string& url() const { return url_; }
  const Capabilities& capabilities() const { return shared_->caps; }
  const std::shared_ptr<StoreShared>& shared() const { return shared_; }
  bool closed() const { return shared_->closed; }
  /// Throws `errc::closed` when closed (and `unsupported` in a forked child).
  void check_open(std::string_view key, std::string_view step) const {
    shared_->check_open(key, step);
  }

  /// The waiting loop. With `single_attempt`, one attempt and an empty result on loss.
  std::optional<Lease> acquire(const Context& ctx, std::string_view key, const LockOptions& opts,
                               bool single_attempt);
  /// Every key or none, in one global order (sorted, so two callers never deadlock).
  MultiLease acquire_all(const Context& ctx, std::vector<std::string> keys,
                         const LockOptions& opts);

  LockInfo inspect(const Context& ctx, std::string_view key);
  std::vector<LockInfo> list(const Context& ctx, std::string_view prefix);
  /// The local line of this object's waiters (shared with the asynchronous driver).
  LocalQueue& line() noexcept { return line_; }
  bool force_release(const Context& ctx, std::string_view key);

  // ---- key-based table: this object's holds, by key ----
  /// A hold: owned (the table keeps the lease) or borrowed (a `with_lock` scope keeps it).
  struct Hold {
    Lease owned;
    std::shared_ptr<LeaseState> state;
  };
  /// Keeps `lease` as this object's hold of its key (replacing a stale one).
  void hold(Lease lease);
  /// Records a hold whose lease someone else keeps (replacing a stale one).
  void hold_borrowed(std::shared_ptr<LeaseState> state);
  /// Removes and returns the hold of `key` (empty state when none).
  Hold take(std::string_view key);
  /// Removes the hold of `key` only if it is `state`.
  void drop_hold(std::string_view key, const LeaseState* state);
  /// The state of this object's hold of `key`, or nullptr.
  std::shared_ptr<LeaseState> find(std::string_view key) const;

  void close();

 private:
  std::shared_ptr<StoreShared> shared_;
  std::string url_;
  LocalQueue line_;  // Local waiters of one key take turns talking to the store.
  mutable std::mutex mu_;
  std::map<std::string, Hold, std::less<>> held_;
  std::shared_ptr<ReentryTable> reentries_ = std::make_shared<ReentryTable>();
  // The waiting loop without the reentrancy layer.
  std::optional<Lease> acquire_grant(const Context& ctx, std::string_view key,
                                     const LockOptions& opts, bool single_attempt);
};

/// A store handle over `backend` (leases on the steady clock and the process-wide renewal
/// scheduler).
Store make_store(std::shared_ptr<Backend> backend, std::string redacted_url);
/// Same, on a given clock and scheduler (unit tests).
Store make_store(std::shared_ptr<Backend> backend, std::string redacted_url, const Clock& clock,
                 RenewalScheduler& scheduler);

}  // namespace dlock::detail
