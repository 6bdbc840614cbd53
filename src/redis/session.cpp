#include "redis/session.hpp"

#include "redis/redis_backend.hpp"

namespace dlock::detail::redis {

using clock = std::chrono::steady_clock;

RedisSession::RedisSession(std::shared_ptr<RedisBackend> b, const AcquireRequest& r)
    : b_(std::move(b)),
      req_(r),
      keys_(b_->keys_for(r.key)),
      ttl_(std::to_string(r.ttl.count())),
      entry_(b_->sid() + ":" + ttl_ + ":" + r.token),
      sub_(&b_->subscriber_for(keys_.lock)) {}

RedisSession::~RedisSession() {
  if (channel_) sub_->unsubscribe(channel_);
}

Attempt RedisSession::attempt(const Context& ctx) {
  auto& sub = *sub_;
  // A subscription kept from an earlier wait on this lock lets even the first attempt queue.
  if (!channel_ && req_.waits) channel_ = sub.try_join(keys_.wake + b_->sid());
  if (channel_ && queued_ && b_->config().min_replicas == 0) {
    // Handed over by a release ("<token> <fencing>" on our channel): ours without a round
    // trip. The release ran after our last attempt was sent, so the TTL counts from there.
    // (With min_replicas the attempt below confirms it: its write is what WAIT can count.)
    const std::string msg = sub.last_message(*channel_);
    if (msg.size() > req_.token.size() && msg.starts_with(req_.token) &&
        msg[req_.token.size()] == ' ') {
      Attempt a = Attempt::won(b_->new_grant(req_, keys_),
                               parse_u64(std::string_view(msg).substr(req_.token.size() + 1)));
      a.valid_from = last_attempt_;
      a.sent_to_store = false;
      queued_ = false;
      return a;
    }
  }
  // The first attempt (without a subscription) only takes a free lock nobody queues for.
  // Later ones (made after we subscribed to our wake-up channel) also queue us, so a release
  // hands us the lock in turn.
  const bool enqueue = channel_ != nullptr;
  // Note the channel's version first: a message published after this is one to wait for.
  if (channel_) seen_ = sub.version(*channel_);
  if (enqueue) {
    queued_ = true;
    last_attempt_ = clock::now();
  }
  maybe_granted_ = true;  // Until an answer says otherwise.
  Attempt a = b_->try_acquire(ctx, req_, keys_, ttl_, enqueue, entry_);
  maybe_granted_ = false;
  if (a.acquired()) queued_ = false;
  return a;
}

bool RedisSession::wait(const Context& ctx, clock::time_point until) {
  if (!channel_) {
    // First loss: subscribe (bounded by the command timeout), then retry at once.
    auto limit = std::min(ctx.deadline(), clock::now() + b_->config().request_timeout);
    channel_ = sub_->subscribe(keys_.wake + b_->sid(), limit, ctx.stop_token());
    return false;
  }
  // Retry before our queue entry expires (half its lifetime leaves room for the round trip).
  auto refresh = last_attempt_ + b_->queue_entry_lifetime() / 2;
  auto limit = std::min({until, ctx.deadline(), refresh});
  return sub_->wait_change(*channel_, seen_, limit, ctx.stop_token());
}

void RedisSession::abandon() noexcept {
  // Leaving the queue also releases a lock that holds our token (a grant whose answer was
  // lost, or one a release handed us meanwhile), conditional on that token.
  if (!queued_ && !maybe_granted_) return;
  queued_ = false;
  maybe_granted_ = false;
  try {
    b_->leave_queue(req_, keys_, entry_);
  } catch (...) {
    // Unreachable server: the entry expires by itself within its lifetime.
  }
}

}  // namespace dlock::detail::redis
