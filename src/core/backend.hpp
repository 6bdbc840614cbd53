// The store interface: the small set of operations every store translates into its protocol.
//
// Everything a user sees (waiting, retries, renewal, loss signals, validity, metrics, the
// closed check, the key-based layer) is built once in core on top of this. A store implements
// `Backend` and, for waiting, an `AcquireSession`. A won attempt hands core the store's own
// state of that grant (`GrantState`: keys, token, lease id, revision...), which core keeps
// with the lease and hands back to `release` and `extend`: a store keeps no table of grants.
//
// Threading: every method may be called from any thread, concurrently. Calls block the
// calling thread (bounded by the Context), never a shared pool. Core checks that the store
// object is open before each call; a store need not.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/error.hpp"
#include "dlock/lock_info.hpp"
#include "dlock/options.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

class LeaseState;

/// One acquisition that a session tries to win.
struct AcquireRequest {
  std::string key;                ///< The user's key (no prefix; the store adds its own).
  std::string token;              ///< The random token of this acquisition (32 hex chars).
  std::chrono::milliseconds ttl;  ///< Validated TTL (>= store min_ttl).
  std::string metadata;           ///< Serialized owner metadata (JSON object text).
  /// Whether the caller waits when the lock is taken (false: one attempt only). A waiting
  /// acquisition is alone per key and store object (the local line admits one at a time).
  bool waits = false;
  /// How the grant shares the lock; core has checked that the store supports it.
  LockMode mode{};
};

/// A store's state of one grant it gave. A session's winning attempt creates it; core owns it
/// for the grant's life and passes it back to `Backend::release` / `extend` / `extend_many`
/// (never concurrently with itself for release, which core calls at most once).
class GrantState {
 public:
  GrantState() = default;
  GrantState(const GrantState&) = delete;
  GrantState& operator=(const GrantState&) = delete;
  virtual ~GrantState() = default;

  /// Tells core that the store learned the grant is gone (key deleted, lease or session
  /// ended): the lease's loss signal fires (reason `store_reported`) on a core thread.
  /// Thread-safe and non-blocking; a no-op after release. The store must call it only while
  /// the object is alive (e.g. under the lock its destructor takes to unregister it).
  void report_lost(std::error_code why = make_error_code(errc::lock_lost)) noexcept;

  /// Tells core that the store cannot vouch for the grant for now (its connection or session
  /// is interrupted) although the grant may still be valid: the lease's at-risk signal fires.
  /// Same threading contract as `report_lost`.
  void report_at_risk(std::error_code why = make_error_code(errc::unavailable)) noexcept;
  /// Tells core that the interruption reported by `report_at_risk` is over (the session is
  /// back): the lease's recovered signal fires.
  void report_recovered() noexcept;

 private:
  friend class LeaseState;
  // Set by core once the lease exists; a loss reported earlier is kept until then (a risk
  // reported earlier is not: the first renewal tells).
  void attach(std::weak_ptr<LeaseState> lease) noexcept;
  std::shared_ptr<LeaseState> lease() noexcept;
  std::mutex mu_;
  std::weak_ptr<LeaseState> lease_;
  bool attached_ = false;
  std::error_code early_loss_{};
};

/// The result of one attempt.
struct Attempt {
  /// For a win: the store's state of the new grant (never null on a win).
  std::unique_ptr<GrantState> grant{};
  /// For a win: the grant's fencing token (strictly increasing per key).
  std::uint64_t fencing_token = 0;
  /// For a loss: the holder's remaining TTL if the store told it (bounds the next wait).
  std::optional<std::chrono::milliseconds> holder_ttl{};
  /// For a win the store granted before this attempt (a release handed the lock over): when
  /// the TTL started at the latest. Unset: the TTL started after the attempt began.
  std::optional<std::chrono::steady_clock::time_point> valid_from{};
  /// Whether this attempt asked the store (counted in the metrics as an acquire attempt).
  bool sent_to_store = true;

  /// Whether the attempt won the lock.
  bool acquired() const noexcept { return grant != nullptr; }
  /// A loss, with the holder's remaining TTL when known.
  static Attempt lost(std::optional<std::chrono::milliseconds> holder_ttl = std::nullopt) {
    Attempt a;
    a.holder_ttl = holder_ttl;
    return a;
  }
  /// A win.
  static Attempt won(std::unique_ptr<GrantState> grant, std::uint64_t fencing_token) {
    Attempt a;
    a.grant = std::move(grant);
    a.fencing_token = fencing_token;
    return a;
  }
};

/// One acquisition in progress. Created per acquire call; destroyed when it ends.
class AcquireSession {
 public:
  virtual ~AcquireSession() = default;

  /// One attempt (one round trip, ideally). A store with notifications must be subscribed to
  /// the lock's changes before this returns a loss, so that `wait` misses no release that
  /// lands after the attempt. Throws `Error`.
  virtual Attempt attempt(const Context& ctx) = 0;

  /// Blocks until the lock may have changed (returns true), `until` passes or `ctx` ends
  /// (returns false). Stores without notifications just sleep (the default). Throws `Error`.
  virtual bool wait(const Context& ctx, std::chrono::steady_clock::time_point until);

  // ---- asynchronous forms (optional) ----
  /// Called with the answer of an attempt, or what it threw, exactly once.
  using AttemptDone = std::function<void(Attempt, std::exception_ptr)>;
  /// Called when a wait ends (`true`: the lock may have changed), or with what it threw.
  using WaitDone = std::function<void(bool, std::exception_ptr)>;

  /// Starts `attempt` without blocking the caller and returns true; `done` runs later on any
  /// thread. The default returns false: core then runs the blocking `attempt` on its worker
  /// pool (a thread is busy for the round trip, none while waiting).
  virtual bool async_attempt(const Context& ctx, AttemptDone done) {
    (void)ctx;
    (void)done;
    return false;
  }
  /// Starts `wait` without blocking and holding no thread, and returns true: `done` runs once
  /// the lock may have changed, `until` passed or `ctx` ended (deadline or stop). It may run
  /// under the store's own locks, so core's `done` only queues work. The default returns
  /// false: core then uses a timer (stores without notifications) or runs the blocking `wait`
  /// on its worker pool (which holds a thread while waiting).
  virtual bool async_wait(const Context& ctx, std::chrono::steady_clock::time_point until,
                          WaitDone done) {
    (void)ctx;
    (void)until;
    (void)done;
    return false;
  }

  /// The caller gives up (timeout, cancel, no-wait, or a grant core refused). Removes any
  /// queue entry this session created and any grant it may have made whose answer was lost or
  /// refused (conditional on this acquisition's token: it never hurts another holder). Must
  /// not throw; bounded in time (`kCleanupTimeout`).
  virtual void abandon() noexcept = 0;
};

/// How a release or extension went.
enum class GrantStatus {
  held,      ///< The grant was ours: it is now released / extended.
  not_held,  ///< The store no longer had the grant (expired, taken over, force-released).
  failed,    ///< The store could not be asked (see the error); the grant's state is unknown.
};

/// A `GrantStatus` and, for `failed`, why.
struct GrantResult {
  GrantStatus status = GrantStatus::failed;
  std::error_code error{};
  static GrantResult held() noexcept { return {GrantStatus::held, {}}; }
  static GrantResult not_held() noexcept { return {GrantStatus::not_held, {}}; }
  static GrantResult failed(std::error_code e) noexcept { return {GrantStatus::failed, e}; }
  /// `held` when `ok`, else `not_held`.
  static GrantResult held_if(bool ok) noexcept { return ok ? held() : not_held(); }
};

/// Runs `fn` (returning a GrantResult) and turns what it throws into `failed`, so stores write
/// their release/extend with the throwing helpers they use elsewhere.
template <class F>
GrantResult guarded(F&& fn) noexcept {
  try {
    return fn();
  } catch (const std::system_error& e) {
    return GrantResult::failed(e.code());
  } catch (...) {
    return GrantResult::failed(make_error_code(errc::protocol_error));
  }
}

/// The bound on clean-up work that runs without a caller's deadline: undoing an abandoned
/// acquisition, releasing leases from a destructor or `close()`.
inline constexpr std::chrono::seconds kCleanupTimeout{5};

/// A lock store.
class Backend {
 public:
  virtual ~Backend() = default;

  /// The URL scheme, e.g. "memory".
  virtual std::string_view scheme() const = 0;
  /// What the store can do (constant for the object's life).
  virtual Capabilities capabilities() const = 0;

  /// Starts an acquisition. Cheap; may subscribe to notifications. Throws `Error`.
  virtual std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) = 0;

  /// Deletes the grant if it still holds its lock. Called at most once per grant.
  virtual GrantResult release(const Context& ctx, GrantState& grant) noexcept = 0;

  /// Extends the grant to `ttl` from now if it still holds its lock.
  virtual GrantResult extend(const Context& ctx, GrantState& grant,
                             std::chrono::milliseconds ttl) noexcept = 0;

  /// Turns an exclusive grant into a shared one without letting a writer in between (the
  /// fencing token stays). Stores without `Capabilities::downgrades` keep the default, which
  /// fails with `errc::unsupported`.
  virtual GrantResult downgrade(const Context& ctx, GrantState& grant) noexcept;

  /// Replaces the metadata stored with the grant (an election's proclaim) if it still holds its
  /// lock. The default fails with `errc::unsupported` (stores with `Capabilities::proclaims`
  /// override it).
  virtual GrantResult set_metadata(const Context& ctx, GrantState& grant,
                                   const std::string& metadata) noexcept;

  /// A subscription to one lock's changes, for `Store::watch`.
  class ChangeWatch {
   public:
    virtual ~ChangeWatch() = default;
    /// Blocks until the lock may have changed since the subscription or the previous call
    /// (true), `until` passes or `ctx` ends (false). Throws `Error`.
    virtual bool wait(const Context& ctx, std::chrono::steady_clock::time_point until) = 0;
  };
  /// Subscribes to `key`'s changes (grants, releases, metadata). The default returns null:
  /// core then reads the lock periodically. Throws `Error`.
  virtual std::unique_ptr<ChangeWatch> watch_changes(const std::string& key);

  /// One grant of a batch to extend.
  struct Extension {
    GrantState* grant;
    std::chrono::milliseconds ttl;
  };
  /// Extends several grants at once (renewals that fell due together), one result per item
  /// in order. The default calls `extend` for each; a store that can send them together
  /// (pipelining, `Capabilities::extends_in_batches`) overrides it.
  virtual std::vector<GrantResult> extend_many(const Context& ctx,
                                               std::span<const Extension> items) noexcept;

  /// A holder as the store records it; core parses `metadata` into `OwnerInfo`.
  struct Holder {
    LockMode mode{};
    std::uint64_t fencing_token = 0;
    std::chrono::milliseconds ttl_remaining{-1};  ///< -1 ms when unknown.
    std::string metadata{};                       ///< Raw metadata as stored, or empty.
  };
  /// A lock's state as the store records it.
  struct Inspection {
    std::string key{};                       ///< The user's key (no prefix).
    std::vector<Holder> holders{};           ///< Oldest first; empty when free.
    std::optional<std::uint64_t> waiters{};  ///< When the store records waiters.
  };
  /// Reads the lock's state. Throws `Error`.
  virtual Inspection inspect(const Context& ctx, const std::string& key) = 0;

  /// Held locks with keys starting with `prefix`. Throws `Error`.
  virtual std::vector<Inspection> list(const Context& ctx, const std::string& prefix) = 0;

  /// Deletes the lock whoever holds it. Returns whether something was deleted. Throws `Error`.
  virtual bool force_release(const Context& ctx, const std::string& key) = 0;

  /// Closes connections and stops background work. Called once, by core, after every lease
  /// of the store object was released.
  virtual void close() noexcept = 0;
};

/// Creates a backend from a URL of its scheme. Throws `Error` (invalid_argument,
/// unavailable, auth_failed).
using BackendFactory =
    std::function<std::shared_ptr<Backend>(const std::string& url, const Context& ctx)>;

}  // namespace dlock::detail
