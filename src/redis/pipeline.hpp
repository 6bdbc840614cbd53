// The I/O-free heart of a multiplexed connection: a FIFO of requests that writes every queued
// request in one batch and matches replies to requests in order. Push messages (pub/sub
// deliveries) are routed to a separate handler. Not thread-safe: the connection's I/O thread
// owns it. Tested without a network (tests/integration/redis/pipeline_test.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "dlock/error.hpp"
#include "redis/resp.hpp"

namespace dlock::detail::redis {

/// Why a request got no reply.
struct Failure {
  errc code = errc::unavailable;
  std::string detail;
};

/// A reply or the failure that replaced it.
struct Outcome {
  std::optional<RespValue> reply;  ///< Set on success (may itself be a RESP error).
  Failure failure;                 ///< Meaningful when `reply` is empty.
};

using ReplyHandler = std::function<void(Outcome&&)>;

class Pipeline {
 public:
  using clock = std::chrono::steady_clock;
  /// Whether a reply is an unsolicited push (e.g. a pub/sub "message"), not a request's reply.
  using PushFilter = std::function<bool(const RespValue&)>;
  using PushHandler = std::function<void(RespValue&&)>;

  Pipeline() = default;
  Pipeline(PushFilter is_push, PushHandler on_push);

  /// Queues a request (RESP bytes) to be written with the next batch.
  void enqueue(std::string wire, ReplyHandler handler);
  /// Queues a request ahead of all unwritten ones (connection handshake: AUTH, SELECT).
  void prepend(std::string wire, ReplyHandler handler);
  /// Whether requests are waiting to be written.
  bool has_unwritten() const { return !unwritten_.empty(); }
  /// Up to `max` unwritten requests as one buffer; they move to the in-flight queue (sent at
  /// `now`).
  std::string take_batch(clock::time_point now = clock::now(),
                         std::size_t max = static_cast<std::size_t>(-1));
  /// Number of requests written but not answered.
  std::size_t in_flight() const { return in_flight_.size(); }
  /// When the oldest unanswered request was written, if any.
  std::optional<clock::time_point> oldest_sent() const;

  /// Parses `size` bytes read from the wire and completes handlers in FIFO order. Returns
  /// false on malformed input or a reply nobody asked for; the caller must then drop the
  /// connection (and call `fail_all`).
  bool feed(const char* data, std::size_t size);

  /// Fails every queued and in-flight request (connection lost or closed); resets the parser.
  void fail_all(const Failure& why);

 private:
  struct Entry {
    std::string wire;
    ReplyHandler handler;
    clock::time_point sent{};
  };
  PushFilter is_push_;
  PushHandler on_push_;
  std::deque<Entry> unwritten_, in_flight_;
  std::optional<RespParser> parser_{std::in_place};
};

}  // namespace dlock::detail::redis
