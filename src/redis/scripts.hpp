// The Lua scripts of the lock protocol, each one round trip, run with EVALSHA (EVAL when the
// server lost its script cache, which also reloads it).
//
// Keys of lock `name` (K = `<prefix><name>`, see docs/stores/redis.md):
//   K           the lock: value = holder's token, PX = TTL (the protocol of redis-py, redsync...)
//   {K}:fence   the fencing counter (INCR per grant; no TTL, so numbers only grow)
//   {K}:meta    "<token>\n<fencing>\n<owner JSON>", same TTL as K
//   {K}:queue   waiting dlock clients' tokens in arrival order (list)
//   {K}:qexp    each queued token's expiry, server milliseconds (sorted set)
// and per waiter the pub/sub channel {K}:wake:<token>, on which release (or a waiter giving
// up) wakes the first live waiter of the queue, and only that one. The hash tag {K} puts the
// companions in K's cluster slot (for keys without their own hash tag).
//
// Fair queueing (as Redisson's fair lock): a free lock goes to the first live waiter; a
// newcomer cannot take it while live waiters queue. Entries expire unless their waiter
// refreshes them by retrying, so a crashed waiter delays the others by at most one entry
// lifetime.
#pragma once

#include <string>
#include <string_view>

namespace dlock::detail::redis {

struct Script {
  std::string body;
  std::string sha1;  ///< Hex SHA-1 of `body`, as EVALSHA wants it.
};

/// KEYS: lock, fence, meta, queue, qexp. ARGV: token, ttl ms, metadata, enqueue ("0"/"1"),
/// entry lifetime ms. -> {1, fencing} | {0, ms until worth retrying (-1: unknown)}
const Script& acquire_script();
/// KEYS: lock, meta, queue, qexp. ARGV: token, channel prefix. -> 1 released | 0 not held
const Script& release_script();
/// KEYS: lock, queue, qexp. ARGV: token, channel prefix. Removes a waiter's entry; wakes the
/// next waiter if the lock is free. -> 1
const Script& leave_queue_script();
/// KEYS: lock, meta. ARGV: token, ttl ms. -> 1 extended | 0 not held
const Script& extend_script();
/// KEYS: lock, meta, queue, qexp. ARGV: channel prefix. -> number of lock keys deleted
const Script& force_release_script();
/// KEYS: lock, meta. -> {} free | {value, pttl, meta}
const Script& inspect_script();

}  // namespace dlock::detail::redis
