// The store interface: the small set of operations every store translates into its protocol.
//
// Everything a user sees (waiting, retries, renewal, loss signals, validity, metrics, the
// key-based layer) is built once in core on top of this. A store implements `Backend` and,
// for waiting, an `AcquireSession`.
//
// Threading: every method may be called from any thread, concurrently. Calls block the
// calling thread (bounded by the Context), never a shared pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/lock_info.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

/// One acquisition that a session tries to win.
struct AcquireRequest {
  std::string key;                ///< The user's key (no prefix; the store adds its own).
  std::string token;              ///< The random token of this acquisition (32 hex chars).
  std::chrono::milliseconds ttl;  ///< Validated TTL (>= store min_ttl).
  std::string metadata;           ///< Serialized owner metadata (JSON object text).
  /// Whether the caller waits when the lock is taken (false: one attempt only). A waiting
  /// acquisition is alone per key and store object (the local line admits one at a time).
  bool waits = false;
};

/// The result of one attempt.
struct Attempt {
  bool acquired = false;
  /// For a win: the grant's fencing token (strictly increasing per key).
  std::uint64_t fencing_token = 0;
  /// For a loss: the holder's remaining TTL if the store told it (bounds the next wait).
  std::optional<std::chrono::milliseconds> holder_ttl{};
  /// For a win the store granted before this attempt (a release handed the lock over): when
  /// the TTL started at the latest. Unset: the TTL started after the attempt began.
  std::optional<std::chrono::steady_clock::time_point> valid_from{};
  /// Whether this attempt asked the store (counted in the metrics as an acquire attempt).
  bool sent_to_store = true;
};

/// One acquisition in progress. Created per acquire call; destroyed when it ends.
class AcquireSession {
 public:
  virtual ~AcquireSession() = default;

  /// One attempt (one round trip, ideally). A store with notifications must be subscribed to
  /// the lock's changes before this returns a loss, so that `wait` misses no release that
  /// lands after the attempt.
  virtual Attempt attempt(const Context& ctx) = 0;

  /// Blocks until the lock may have changed (returns true), `until` passes or `ctx` ends
  /// (returns false). Stores without notifications just sleep (the default).
  virtual bool wait(const Context& ctx, std::chrono::steady_clock::time_point until);

  /// The caller gives up (timeout, cancel, no-wait). Remove any queue entry this session
  /// created. Must not throw; bounded in time.
  virtual void abandon() noexcept {}
};

/// Called by a store when it learns that a grant is gone (lease expired, session lost).
using LossSink = std::function<void(const std::string& key, const std::string& token)>;

/// A lock store.
class Backend {
 public:
  virtual ~Backend() = default;

  /// The URL scheme, e.g. "memory".
  virtual std::string_view scheme() const = 0;
  /// What the store can do.
  virtual Capabilities capabilities() const = 0;

  /// Starts an acquisition. Cheap; may subscribe to notifications.
  virtual std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) = 0;

  /// Deletes the grant if `token` still holds `key`. Returns false if it did not.
  virtual bool release(const Context& ctx, const std::string& key, const std::string& token) = 0;

  /// Extends the grant to `ttl` if `token` still holds `key`. Returns false if it did not.
  virtual bool extend(const Context& ctx, const std::string& key, const std::string& token,
                      std::chrono::milliseconds ttl) = 0;

  /// One grant of a batch to extend.
  struct Extension {
    std::string_view key;
    std::string_view token;
    std::chrono::milliseconds ttl;
  };
  /// The outcome of one extension: 1 extended, 0 not held any more, -1 the store failed
  /// (`error` says how).
  struct ExtensionResult {
    int status = -1;
    std::error_code error{};
  };
  /// Extends several grants at once (renewals that fell due together), one result per item
  /// in order. Never throws. The default calls `extend` for each; a store that can send them
  /// together (pipelining) overrides it.
  virtual std::vector<ExtensionResult> extend_many(const Context& ctx,
                                                   const std::vector<Extension>& items);
  /// Whether `extend_many` is worth batching for (the renewal scheduler then gathers due
  /// renewals of this store; otherwise it runs them one per worker, in parallel).
  virtual bool extends_in_batches() const { return false; }

  /// Reads the lock's state. `LockInfo::owner` is filled from the stored metadata by core
  /// if the store leaves `metadata` set: the store returns the raw metadata here.
  struct Inspection {
    LockInfo info;
    std::string metadata;  ///< Raw metadata as stored, or empty.
  };
  virtual Inspection inspect(const Context& ctx, const std::string& key) = 0;

  /// Held locks with keys starting with `prefix`.
  virtual std::vector<Inspection> list(const Context& ctx, const std::string& prefix) = 0;

  /// Deletes the lock whoever holds it. Returns whether something was deleted.
  virtual bool force_release(const Context& ctx, const std::string& key) = 0;

  /// Installs the sink through which the store reports lost grants. Called once by core
  /// before any acquire.
  virtual void set_loss_sink(LossSink sink) { (void)sink; }

  /// Closes connections. Later calls may throw `errc::closed`. Idempotent.
  virtual void close() noexcept = 0;
};

/// Creates a backend from a URL of its scheme. Throws `Error` (invalid_argument,
/// unavailable, auth_failed).
using BackendFactory =
    std::function<std::shared_ptr<Backend>(const std::string& url, const Context& ctx)>;

}  // namespace dlock::detail
