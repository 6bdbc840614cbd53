// A thin shell over libzookeeper-mt: one session at a time (a new one after expiry), every
// request bounded by the caller's Context and the request timeout, one-shot watches as
// callbacks, and the session's state changes as events. No ZooKeeper type leaves this file.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "dlock/context.hpp"
#include "dlock/zookeeper.hpp"

struct _zhandle;

namespace dlock::detail::zookeeper {

/// What dlock reads of a node's stat.
struct NodeStat {
  std::int64_t czxid = 0;            ///< The zxid that created the node.
  std::int32_t version = 0;          ///< The data version.
  std::int64_t ephemeral_owner = 0;  ///< The owning session, 0 for a persistent node.
  std::int64_t mtime_ms = 0;         ///< Last write, ms since the epoch by the server's clock.
};

/// What kind of node `create` makes.
enum class NodeKind {
  persistent,
  container,             ///< Deleted by the server some time after its last child goes.
  ephemeral_sequential,  ///< Gone with the session; the server appends a 10-digit sequence.
};

/// The outcome of a request that the caller handles (anything else throws).
enum class Rc { ok, no_node, node_exists, bad_version, not_empty };

/// The session's state changes, called on the client's event thread (must not block on a
/// request; may take the caller's own locks).
struct SessionEvents {
  std::function<void(std::uint64_t generation)> disconnected;  ///< Connection lost.
  std::function<void(std::uint64_t generation)> reconnected;   ///< Back, same session.
  std::function<void(std::uint64_t generation)> expired;       ///< The session ended.
};

class Client {
 public:
  explicit Client(const ZooKeeperConfig& config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sets the event callbacks (before the first `ensure`).
  void set_events(SessionEvents events) { events_ = std::move(events); }

  /// Makes sure a session is established (a new one after expiry: a new generation) and
  /// returns its generation. Throws `Error` (unavailable, auth_failed, timeout, cancelled,
  /// closed).
  std::uint64_t ensure(const Context& ctx, const std::string& key, const char* step);

  /// The generation of the current session (0 before the first).
  std::uint64_t generation() const;
  /// The session id and password of the current session (for tests that end it).
  std::pair<std::int64_t, std::string> session_credentials() const;

  /// Creates `path` as a node of `kind`; `created` gets the path the server gave, `stat` its
  /// stat. Returns ok, no_node (no parent) or node_exists.
  Rc create(const Context& ctx, const std::string& path, const std::string& data, NodeKind kind,
            std::string* created, NodeStat* stat, const std::string& key, const char* step);
  /// Creates `path` and its missing parents (existing ones are fine): the parents as
  /// persistent nodes, `path` itself as `kind` (persistent or container).
  void create_parents(const Context& ctx, const std::string& path, NodeKind kind,
                      const std::string& key, const char* step);
  /// Deletes `path` if its version is `version` (-1: any). ok, no_node, bad_version, not_empty.
  Rc remove(const Context& ctx, const std::string& path, int version, const std::string& key,
            const char* step);
  /// Reads `path`'s stat; with `on_change`, leaves a watch that calls it once when the node
  /// is created, changed or deleted (not when the session ends). ok or no_node.
  Rc exists(const Context& ctx, const std::string& path, NodeStat* stat,
            std::function<void()> on_change, const std::string& key, const char* step);
  /// Reads `path`'s data and stat. ok or no_node.
  Rc get(const Context& ctx, const std::string& path, std::string* data, NodeStat* stat,
         const std::string& key, const char* step);
  /// Writes `path`'s data if its version is `version`. ok, no_node or bad_version.
  Rc set(const Context& ctx, const std::string& path, const std::string& data, int version,
         NodeStat* stat, const std::string& key, const char* step);
  /// Lists `path`'s children. ok or no_node.
  Rc children(const Context& ctx, const std::string& path, std::vector<std::string>* names,
              const std::string& key, const char* step);

  /// Closes the session (its ephemeral nodes go at once). Idempotent; never throws.
  void close() noexcept;

  /// Called by the C client's threads (public for its C callbacks only).
  void on_session_event(_zhandle* zh, int state);

 private:
  struct Call;
  _zhandle* handle(const Context& ctx, const std::string& key, const char* step,
                   std::shared_lock<std::shared_mutex>& use);
  void wait_call(Call& call, const Context& ctx, const std::string& key, const char* step);
  /// One asynchronous request: `start(zh, boxed)` hands it to the C client (returning its
  /// rc) under the handle's shared lock, then its answer is awaited without the lock. Null
  /// when the C client refused it at once (`rc` says why).
  template <class Start>
  std::shared_ptr<Call> request(const Context& ctx, const std::string& key, const char* step,
                                int& rc, Start&& start);
  Rc finish(int rc, const std::string& key, const char* step, const std::string& path);
  void connect(const Context& ctx, const std::string& key, const char* step);

  const ZooKeeperConfig cfg_;
  SessionEvents events_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Held shared while a request is handed to the handle, exclusively while one is closed.
  std::shared_mutex swap_mu_;
  std::mutex connect_mu_;  // Serializes (re)connecting; never taken by the event thread.
  _zhandle* zh_ = nullptr;
  int state_ = 0;  // The handle's last session state.
  bool was_connected_ = false;
  bool closed_ = false;
  std::uint64_t generation_ = 0;
};

}  // namespace dlock::detail::zookeeper
