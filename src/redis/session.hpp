// One acquisition on the Redis store: attempts through the acquire script, waiting on the
// store object's wake-up channel for the lock, taking a lock a release handed over without a
// round trip, and leaving the queue when the caller gives up (see docs/stores/redis.md,
// "Waiting").
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/backend.hpp"
#include "redis/keys.hpp"
#include "redis/subscriber.hpp"

namespace dlock::detail::redis {

class RedisBackend;

class RedisSession final : public AcquireSession {
 public:
  RedisSession(std::shared_ptr<RedisBackend> backend, const AcquireRequest& request);
  ~RedisSession() override;
  Attempt attempt(const Context& ctx) override;
  bool wait(const Context& ctx, std::chrono::steady_clock::time_point until) override;
  void abandon() noexcept override;

 private:
  std::shared_ptr<RedisBackend> b_;
  AcquireRequest req_;
  LockKeys keys_;
  std::string ttl_;
  std::string entry_;                             // Our queue entry: "<sid>:<ttl>:<token>".
  Subscriber* sub_;                               // The backend's, for our lock's node.
  std::shared_ptr<Subscriber::Channel> channel_;  // {K}:wake:<sid>, once subscribed.
  std::uint64_t seen_ = 0;
  bool queued_ = false;         // An attempt put (or may have put) us in the queue.
  bool maybe_granted_ = false;  // An attempt's answer was lost: it may have won.
  std::chrono::steady_clock::time_point last_attempt_{};  // Our entry expires a lifetime later.
};

}  // namespace dlock::detail::redis
