// The one subscriber connection of a store object: SUBSCRIBE per lock channel that somebody
// waits on (reference counted), and a change counter per channel that waiters block on. A
// channel nobody waits on stays subscribed for a while (the next wait on that lock then needs
// no SUBSCRIBE round trip); the oldest idle ones are unsubscribed beyond a limit. After a
// dropped connection it re-subscribes and wakes every waiter (a release may have been
// missed).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
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
    std::string last_message;   ///< The payload of the latest message.
    std::chrono::steady_clock::time_point idle_since{};  ///< When `refs` dropped to 0.
    std::condition_variable_any changed;
    /// Called with each message's payload (on the I/O thread, without the subscriber's
    /// lock); set by `listen`.
    std::function<void(const std::string&)> on_message;
  };

  /// `sharded`: shard channels (SSUBSCRIBE, Redis 7), for the node of a cluster that owns
  /// the channels' slot; published with SPUBLISH, they reach only that node.
  Subscriber(asio::io_context& io, ConnectionOptions options, bool sharded = false);
  ~Subscriber();

  /// Subscribes to `channel` (or joins an existing subscription) and blocks until the server
  /// confirmed it or `deadline`/`stop` ends the wait. Returns the channel; the caller must
  /// call `unsubscribe` once per `subscribe`. Never throws for server trouble: a channel that
  /// is not confirmed simply never reports messages (waiters fall back to their bound).
  std::shared_ptr<Channel> subscribe(const std::string& channel,
                                     std::chrono::steady_clock::time_point deadline,
                                     const std::stop_token& stop);
  /// Subscribes to `channel` (or joins it) without waiting for the server, and calls
  /// `on_message` with every message on it from then on (the first listener's callback
  /// stays). Pair with `unsubscribe`. Never blocks, never throws for server trouble.
  std::shared_ptr<Channel> listen(const std::string& channel,
                                  std::function<void(const std::string&)> on_message);
  /// Joins `channel` if it is subscribed and confirmed already (an idle subscription kept
  /// from an earlier wait); nullptr otherwise. Never blocks. Pair with `unsubscribe`.
  std::shared_ptr<Channel> try_join(const std::string& channel);
  /// Drops one reference; the channel then idles (see the file comment). Never blocks, never
  /// throws.
  void unsubscribe(const std::shared_ptr<Channel>& channel) noexcept;

  /// The version of `channel` now (take it before an attempt, wait for a change after).
  std::uint64_t version(const Channel& channel);
  /// The payload of the latest message on `channel` ("" before the first).
  std::string last_message(const Channel& channel);
  /// Blocks until `channel`'s version differs from `seen` (true), or `until`/`stop` (false).
  bool wait_change(Channel& channel, std::uint64_t seen,
                   std::chrono::steady_clock::time_point until, const std::stop_token& stop);

  /// Drops the connection: it reconnects (asking the sentinels again) and re-subscribes.
  void reset() noexcept;
  void close() noexcept;

 private:
  struct State {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<Channel>, std::less<>> channels;
    std::shared_ptr<PushConnection> conn;
    std::size_t idle = 0;  // Channels with refs == 0.
    bool sharded = false;
    bool closed = false;
  };
  static void send_subscribe(const std::shared_ptr<State>& st, const std::shared_ptr<Channel>& ch);
  // Unsubscribes idle channels beyond the limits (under st->mu).
  static void trim_idle(State& st);
  std::shared_ptr<State> state_;
};

}  // namespace dlock::detail::redis
