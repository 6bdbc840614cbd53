// The one subscriber connection of a store object: SUBSCRIBE per lock channel that somebody
// waits on (reference counted; UNSUBSCRIBE when the last waiter leaves), and a change counter
// per channel that waiters block on. After a dropped connection it re-subscribes and wakes
// every waiter (a release may have been missed).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "redis/connection.hpp"

namespace dlock::detail::redis {

class Subscriber {
 public:
  /// One channel's state, shared by its waiters.
  struct Channel {
    std::string name;
    int refs = 0;
    bool confirmed = false;     ///< The server acknowledged the SUBSCRIBE.
    bool pending = false;       ///< A SUBSCRIBE is on its way.
    bool refused = false;       ///< The server refused it (e.g. NOPERM): waiters just sleep.
    std::uint64_t version = 0;  ///< Bumped by every message (and by reconnects).
    std::condition_variable_any changed;
  };

  Subscriber(asio::io_context& io, ConnectionOptions options);
  ~Subscriber();

  /// Subscribes to `channel` (or joins an existing subscription) and blocks until the server
  /// confirmed it or `deadline`/`stop` ends the wait. Returns the channel; the caller must
  /// call `unsubscribe` once per `subscribe`. Never throws for server trouble: a channel that
  /// is not confirmed simply never reports messages (waiters fall back to their bound).
  std::shared_ptr<Channel> subscribe(const std::string& channel,
                                     std::chrono::steady_clock::time_point deadline,
                                     const std::stop_token& stop);
  /// Drops one reference; the last one sends UNSUBSCRIBE. Never blocks, never throws.
  void unsubscribe(const std::shared_ptr<Channel>& channel) noexcept;

  /// The version of `channel` now (take it before an attempt, wait for a change after).
  std::uint64_t version(const Channel& channel);
  /// Blocks until `channel`'s version differs from `seen` (true), or `until`/`stop` (false).
  bool wait_change(Channel& channel, std::uint64_t seen,
                   std::chrono::steady_clock::time_point until, const std::stop_token& stop);

  void close() noexcept;

 private:
  struct State {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<Channel>, std::less<>> channels;
    std::shared_ptr<Connection> conn;
    bool closed = false;
  };
  static void send_subscribe(const std::shared_ptr<State>& st, const std::shared_ptr<Channel>& ch);
  std::shared_ptr<State> state_;
};

}  // namespace dlock::detail::redis
