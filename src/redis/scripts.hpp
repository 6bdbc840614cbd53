// The Lua scripts of the lock protocol, each one round trip, run with EVALSHA (EVAL when the
// server lost its script cache, which also reloads it).
//
// Keys of lock `name` (K = `<prefix><name>`, see docs/stores/redis.md):
//   K           the lock: value = holder's token, PX = TTL (the protocol of redis-py, redsync...)
//   {K}:fence   the fencing counter (INCR per grant; no TTL, so numbers only grow)
//   {K}:meta    "<token>\n<fencing>\n<owner JSON>", same TTL as K
//   {K}:queue   waiting dlock clients in arrival order (list of entries "<sid>:<ttl ms>:<token>",
//               sid = the waiting store object's id)
//   {K}:qexp    each entry's expiry, server milliseconds (sorted set)
//   {K}:qdata   each entry's owner metadata (hash)
// and per waiting store object the pub/sub channel {K}:wake:<sid>. A release hands the lock
// straight to the first live waiter of the queue (sets the lock to its token, takes its
// fencing number) and publishes "<token> <fencing>" on that waiter's channel: one message to
// one waiter, and no round trip for the waiter to take the lock. The hash tag {K} puts the
// companions in K's cluster slot (for keys without their own hash tag).
//
// Fair queueing (as Redisson's fair lock): a free lock goes to the first live waiter; a
// newcomer cannot take it while live waiters queue. Entries expire unless their waiter
// refreshes them by retrying, so a crashed waiter delays the others by at most one entry
// lifetime (or one TTL if the lock was already handed to it, like a crashed holder).
#pragma once

#include <string>
#include <string_view>

namespace dlock::detail::redis {

struct Script {
  std::string body;
  std::string sha1;  ///< Hex SHA-1 of `body`, as EVALSHA wants it.
};

/// KEYS (all queue-aware scripts): lock, fence, meta, queue, qexp, qdata. `sharded`: the
/// variant for a cluster, which publishes with SPUBLISH on shard channels.
///
/// ARGV: token, ttl ms, metadata, enqueue ("0"/"1"), entry lifetime ms, queue entry.
/// -> {1, fencing} (also when the lock was handed to this token: then its TTL restarts) |
///    {0, ms until worth retrying (-1: unknown)}
const Script& acquire_script(bool sharded = false);
/// ARGV: token, channel prefix. Hands the lock to the next waiter. -> 1 released | 0 not held
const Script& release_script(bool sharded = false);
/// ARGV: token, channel prefix, queue entry. Removes a waiter's entry; releases the lock if it
/// was handed to that waiter meanwhile; hands a free lock to the next waiter. -> 1
const Script& leave_queue_script(bool sharded = false);
/// KEYS: lock, meta. ARGV: token, ttl ms. -> 1 extended | 0 not held
const Script& extend_script();
/// ARGV: channel prefix. Hands the lock to the next waiter. -> number of lock keys deleted
const Script& force_release_script(bool sharded = false);
/// KEYS: lock, meta. -> {} free | {value, pttl, meta}
const Script& inspect_script();

}  // namespace dlock::detail::redis
