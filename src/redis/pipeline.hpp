// The I/O-free heart of a multiplexed connection: a FIFO of requests that writes every queued
// request in one batch and matches replies to requests in order. Push messages (pub/sub
// deliveries) are routed to a separate handler. Not thread-safe: its connection serializes
// the calls. Tested without a network (tests/integration/redis/pipeline_test.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "redis/resp.hpp"
#include "redis/result.hpp"

namespace dlock::detail::redis {

using ReplyHandler = std::function<void(Outcome&&)>;

class Pipeline {
 public:
  using clock = std::chrono::steady_clock;
  /// Whether a reply is an unsolicited push (e.g. a pub/sub "message"), not a request's reply.
  using PushFilter = std::function<bool(const RespValue&)>;
  using PushHandler = std::function<void(RespValue&&)>;

  Pipeline() = default;
  Pipeline(PushFilter is_push, PushHandler on_push);

  /// Queues a request (RESP bytes) to be written with the next batch. `tag` (0: none) names
  /// the requests of one caller for `withdraw`.
  void enqueue(std::string wire, ReplyHandler handler, std::uint64_t tag = 0);
  /// Removes the unwritten requests of `tag` without calling their handlers (their caller
  /// gave up: they must not run). Written ones stay: their replies are still to come.
  void withdraw(std::uint64_t tag);
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
  /// Completes the oldest in-flight request with `reply` (parsed by the caller), or hands a
  /// push message to the push handler. Returns false for a reply nobody asked for.
  bool deliver(RespValue&& reply);

  /// Fails every queued and in-flight request (connection lost or closed); resets the parser.
  void fail_all(const Failure& why);

 private:
  struct Entry {
    std::string wire;
    ReplyHandler handler;
    std::uint64_t tag = 0;
    clock::time_point sent{};
  };
  PushFilter is_push_;
  PushHandler on_push_;
  std::deque<Entry> unwritten_, in_flight_;
  std::optional<RespParser> parser_{std::in_place};
};

}  // namespace dlock::detail::redis
