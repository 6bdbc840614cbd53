// The gRPC etcd v3 client shared by both etcd stores: one channel (failover between the
// endpoints), unary calls bounded by the caller's Context and the request timeout, the auth
// token, one lease keep-alive stream and one watch stream. It knows nothing of locks: calls
// return their answer or a `Failure`, and the stores add the key and the step.
//
// Unary calls run on the calling thread (gRPC's synchronous API: no completion-queue pool
// that blocking callers could exhaust); a stop request cancels the call at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "dlock/context.hpp"
#include "dlock/etcd.hpp"
#include "etcd/errors.hpp"
#include "rpc.grpc.pb.h"

namespace dlock::detail::etcd {

namespace pb = etcdserverpb;

class KeepAliveStream;
class WatchHub;

class Client {
 public:
  /// Connects (waits for a ready channel, bounded by `connect_timeout` and `ctx`) and
  /// authenticates when a user is set (one round trip). Fails with invalid_argument (bad
  /// endpoint, unreadable TLS file), unavailable (no member answered in time), auth_failed,
  /// timeout / cancelled (from `ctx`).
  static Reply<std::shared_ptr<Client>> open(const EtcdConfig& config, const Context& ctx);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::chrono::milliseconds request_timeout() const { return request_timeout_; }

  /// Unary calls: one round trip each (more when etcd has no leader or the auth token
  /// expired), bounded by `ctx` and the request timeout.
  Reply<pb::RangeResponse> range(const Context& ctx, const pb::RangeRequest& req);
  Reply<pb::TxnResponse> txn(const Context& ctx, const pb::TxnRequest& req);
  Reply<pb::DeleteRangeResponse> delete_range(const Context& ctx,
                                              const pb::DeleteRangeRequest& req);
  /// Grants a lease of `ttl_seconds`; an answer without a lease is a protocol_error.
  Reply<pb::LeaseGrantResponse> grant(const Context& ctx, std::int64_t ttl_seconds);
  Reply<pb::LeaseTimeToLiveResponse> time_to_live(const Context& ctx, std::int64_t lease);
  /// Revokes `lease` (which deletes its keys). A lease that is already gone is no failure.
  Failure revoke(const Context& ctx, std::int64_t lease);
  /// Revokes `lease` in the background (fire and forget; errors are ignored: the lease then
  /// expires by its TTL).
  void revoke_later(std::int64_t lease);

  /// The lease keep-alive stream and the watch stream of this client.
  KeepAliveStream& keepalive() { return *keepalive_; }
  WatchHub& watches() { return *watches_; }

  /// Prepares a stream's context: a fresh auth token (one round trip when a user is set,
  /// unless the current token was obtained within the last second and not refused), no
  /// deadline, fail fast when not connected.
  Failure prepare_stream(grpc::ClientContext& cc);
  /// etcd refused a stream's token: the next stream authenticates again.
  void token_refused();
  pb::Lease::Stub& lease_stub() { return *lease_; }
  /// The channel, for streams that must wait for it to connect (they fail fast otherwise).
  grpc::Channel& channel() { return *channel_; }
  pb::Watch::Stub& watch_stub() { return *watch_; }

  /// Closes the streams and cancels background work; later calls fail with `errc::closed`.
  void close() noexcept;
  bool closed() const { return closed_; }
  /// Whether calls authenticate (a user is configured).
  bool uses_auth() const { return !user_.empty(); }

 private:
  explicit Client(const EtcdConfig& config);
  Failure connect(const EtcdConfig& config, const Context& ctx);
  template <class Resp, class Fn>
  Reply<Resp> call(const Context& ctx, Fn&& fn);
  void prepare(grpc::ClientContext& cc, const Context& ctx);
  Failure authenticate(const Context& ctx);

  std::chrono::milliseconds request_timeout_;
  std::string user_, password_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::KV::Stub> kv_;
  std::unique_ptr<pb::Lease::Stub> lease_;
  std::unique_ptr<pb::Watch::Stub> watch_;
  std::unique_ptr<pb::Auth::Stub> auth_;
  std::mutex token_mu_;
  std::string token_;
  std::chrono::steady_clock::time_point token_at_{};  // When `token_` was obtained.
  bool token_refused_ = false;
  std::atomic<bool> closed_{false};
  std::unique_ptr<KeepAliveStream> keepalive_;
  std::unique_ptr<WatchHub> watches_;
  // Background revokes: counted so close() can wait (briefly) for them to finish; shared
  // with their callbacks, which may outlive the client.
  struct Inflight {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
  };
  std::shared_ptr<Inflight> revokes_ = std::make_shared<Inflight>();
};

/// The first key after every key starting with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(const std::string& prefix);

/// Lease TTL in whole seconds for `ttl` (rounded up, at least 1).
std::int64_t lease_seconds(std::chrono::milliseconds ttl);

}  // namespace dlock::detail::etcd
