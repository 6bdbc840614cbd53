// The LISTEN connection of one store object, driven by its own thread. It LISTENs on the
// channel of every lock that a session of the store object waits for (reference counted; a
// channel nobody uses stays listened for a while, so the next wait on that lock needs no
// round trip), and, while the store object holds grants, on the table's holders channel,
// where a force release publishes the token it removed: the grant that held it is told at
// once (GrantState::report_lost). One table-wide channel for holders keeps the number of
// LISTENs small however many locks are held (PostgreSQL scans a session's channel list per
// notification). Each notification of a lock channel bumps its version, which waiters block
// on. After a lost connection it reconnects, LISTENs again and wakes every waiter (a release
// may have been missed meanwhile).
// It also deletes long-freed rows now and then (Statements::clean_up), and runs the deferred
// undo of acquisitions abandoned while their statement was in flight (see `defer_release`).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>

#include "core/backend.hpp"
#include "postgres/connection.hpp"

namespace dlock::detail::postgres {

class Listener {
 public:
  using clock = std::chrono::steady_clock;

  /// One channel's state, shared by the sessions and grants that use it.
  struct Channel {
    explicit Channel(std::string n) : name(std::move(n)) {}
    const std::string name;
    int refs = 0;
    bool listening = false;  ///< The server confirmed the LISTEN (and no UNLISTEN since).
    enum class Pending { none, listen, unlisten } pending = Pending::none;
    std::uint64_t version = 0;  ///< Bumped by every notification and reconnect.
    clock::time_point idle_since{};
    std::condition_variable_any changed;
  };

  /// What the listener runs besides LISTEN.
  struct Sql {
    std::string holders_channel;  ///< Carries the tokens of force-released grants.
    std::string clean_up;         ///< Run now and then (no parameters).
    std::string release;          ///< $1 name, $2 token, $3 channel (Statements::release).
  };
  Listener(ConnectParams params, Sql sql);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Takes a reference on `name` and has it listened (starting the thread on first use).
  /// Never blocks. Pair with `leave`.
  std::shared_ptr<Channel> join(const std::string& name);
  /// Takes a reference on `name` only if it is listened already; nullptr otherwise.
  std::shared_ptr<Channel> try_join(const std::string& name);
  /// Drops one reference. Never blocks, never throws.
  void leave(const std::shared_ptr<Channel>& ch) noexcept;
  /// Blocks until the server confirmed `ch`'s LISTEN (true), or `until`, a stop, closing, or
  /// a failed connection attempt of the listener (false: callers then fall back to backoff).
  bool wait_listening(Channel& ch, clock::time_point until, const std::stop_token& stop);
  /// Whether the server confirmed `ch`'s LISTEN (and the connection still stands).
  bool listening(const Channel& ch);
  /// `ch`'s version now (take it before an attempt, wait for a change after).
  std::uint64_t version(const Channel& ch);
  /// Blocks until `ch`'s version differs from `seen` (true), or `until`/`stop` (false).
  bool wait_change(Channel& ch, std::uint64_t seen, clock::time_point until,
                   const std::stop_token& stop);

  /// Registers the grant holding `token`, to be told when a force release names it, and
  /// listens on the holders channel (the returned reference; pass it to `remove_holder`).
  std::shared_ptr<Channel> add_holder(const std::string& token, GrantState* grant);
  /// Unregisters it (under the lock that reporting holds, so no report reaches a dead grant).
  void remove_holder(const std::string& token, const std::shared_ptr<Channel>& ch) noexcept;

  /// Releases `key` if `token` holds it, at `when` (within a second after), on the listener's
  /// connection. For an acquisition given up while its statement was still running on the
  /// server (a timeout or cancel mid-statement, a lost connection): that statement may still
  /// grant the lock after the caller left, but not after its statement_timeout. Best effort:
  /// dropped when the store object closes first.
  void defer_release(clock::time_point when, std::string key, std::string token,
                     std::string channel);

  /// Stops the thread and closes the connection. Idempotent.
  void close() noexcept;

 private:
  void run();
  // One round of the thread: connect if needed, send pending (UN)LISTENs, poll, read.
  void step();
  bool connect_once();
  void drop_connection() noexcept;  // Under no lock.
  void send_pending();
  void read_input();
  void dispatch(const char* channel, const char* payload);
  void sleep_for(std::chrono::milliseconds d);
  void wake() noexcept;
  void start_locked();  // Starts the thread once (under mu_).

  const ConnectParams params_;
  const Sql sql_;

  struct Undo {
    clock::time_point when;
    std::string key, token, channel;
  };

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Channel>, std::less<>> channels_;
  std::unordered_map<std::string, GrantState*> holders_;
  std::vector<Undo> undos_;
  bool started_ = false;
  bool closed_ = false;
  bool down_ = false;  // The last connection attempt failed.

  // Touched by the thread only.
  std::unique_ptr<Connection> conn_;
  bool busy_ = false;  // A batch is on its way.
  bool batch_failed_ = false;
  std::chrono::milliseconds backoff_{100};
  clock::time_point sent_at_{}, last_io_{}, next_clean_up_{};
  std::vector<std::shared_ptr<Channel>> batch_;

  std::stop_source stop_;
  int wake_fd_ = -1;
  std::thread thread_;
};

}  // namespace dlock::detail::postgres
