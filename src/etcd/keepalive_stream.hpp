// One LeaseKeepAlive stream per client: renewals of held locks (one request each, answered on
// the stream) and the background keep-alive, every TTL/3, of the leases of acquisitions that
// are still waiting (their queue entries must not expire while they wait).
//
// A reader thread takes the answers; writers serialize on a mutex. The stream is opened on
// first use and re-opened after it breaks; a break fails the requests in flight.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "dlock/context.hpp"
#include "etcd/errors.hpp"
#include "rpc.grpc.pb.h"

namespace dlock::detail::etcd {

class Client;

class KeepAliveStream {
 public:
  explicit KeepAliveStream(Client& client);
  ~KeepAliveStream();
  KeepAliveStream(const KeepAliveStream&) = delete;
  KeepAliveStream& operator=(const KeepAliveStream&) = delete;

  struct Pending;
  /// A keep-alive request sent and not yet answered.
  using Ticket = std::shared_ptr<Pending>;

  /// Sends one keep-alive for `lease` (opening the stream if needed). Does not wait for the
  /// answer. Fails with unavailable when the stream cannot be written, closed after close().
  Reply<Ticket> send(std::int64_t lease);
  /// `send`, after waiting (bounded by `ctx` and the request timeout) for the channel to be
  /// connected: for an acquisition, which may wait through a failover as unary calls do.
  /// Renewals use `send`: a renewal that cannot be sent fails at once (the grant is at risk).
  Reply<Ticket> send_when_connected(const Context& ctx, std::int64_t lease);
  /// Waits for `ticket`'s answer: the lease's TTL in seconds after the renewal (<= 0: the
  /// lease is gone). Fails with unavailable (stream broke, or no answer within the request
  /// timeout), timeout / cancelled (from `ctx`).
  Reply<std::int64_t> await(const Context& ctx, const Ticket& ticket);
  /// `send` then `await`: one round trip.
  Reply<std::int64_t> once(const Context& ctx, std::int64_t lease) {
    auto t = send(lease);
    if (!t.ok()) return {0, std::move(t.failure)};
    return await(ctx, t.value);
  }

  /// Keeps `lease` (TTL `ttl_seconds`) alive every TTL/3 until `forget(lease)`.
  void keep(std::int64_t lease, std::int64_t ttl_seconds);
  /// Stops keeping `lease` alive.
  void forget(std::int64_t lease);

  /// Calls `fn(lease)` on the reader thread whenever etcd answers a keep-alive with TTL <= 0
  /// (the lease expired or was revoked), whoever sent it. `fn` must not block.
  void on_lease_gone(std::function<void(std::int64_t)> fn);

  /// Ends the stream and the background thread. Idempotent.
  void close() noexcept;

 private:
  using Stream = grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                          etcdserverpb::LeaseKeepAliveResponse>;
  struct Open {
    std::unique_ptr<grpc::ClientContext> cc;
    std::unique_ptr<Stream> rw;
    std::thread reader;
    bool broken = false;
  };
  void read_loop(Open* s);
  void fail_pending_locked();
  void ticker_loop();

  Client& client_;
  std::mutex write_mu_;  // Serializes writes and (re)opening.
  std::unique_ptr<Open> open_;
  std::vector<std::unique_ptr<Open>> dead_;  // Broken streams whose reader is still ending.

  std::mutex mu_;  // Guards everything below.
  std::condition_variable_any cv_;
  std::map<std::int64_t, std::deque<Ticket>> pending_;
  struct Kept {
    std::int64_t ttl_seconds;
    std::chrono::steady_clock::time_point next;
  };
  std::map<std::int64_t, Kept> kept_;
  std::function<void(std::int64_t)> on_gone_;
  bool closed_ = false;
  std::thread ticker_;
};

struct KeepAliveStream::Pending {
  bool done = false;
  bool failed = false;
  std::int64_t ttl = 0;
};

}  // namespace dlock::detail::etcd
