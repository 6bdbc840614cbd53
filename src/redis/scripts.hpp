// The Lua scripts of the lock protocol, each one round trip, run with EVALSHA (EVAL when the
// server lost its script cache, which also reloads it).
//
// Keys of lock `name` (K = `<prefix><name>`, see docs/stores/redis.md):
//   K           the lock: value = holder's token, PX = TTL (the protocol of redis-py, redsync...)
//   {K}:fence   the fencing counter (INCR per grant; no TTL, so numbers only grow)
//   {K}:meta    "<token>\n<fencing>\n<owner JSON>", same TTL as K
// and the pub/sub channel {K}:wake that release publishes on. The hash tag {K} puts the
// companions in K's cluster slot (for keys without their own hash tag).
#pragma once

#include <string>
#include <string_view>

namespace dlock::detail::redis {

struct Script {
  std::string_view body;
  std::string sha1;  ///< Hex SHA-1 of `body`, as EVALSHA wants it.
};

/// KEYS: lock, fence, meta. ARGV: token, ttl ms, metadata. -> {1, fencing} | {0, holder pttl}
const Script& acquire_script();
/// KEYS: lock, meta. ARGV: token, channel. -> 1 released | 0 not held
const Script& release_script();
/// KEYS: lock, meta. ARGV: token, ttl ms. -> 1 extended | 0 not held
const Script& extend_script();
/// KEYS: lock, meta. ARGV: channel. -> number of lock keys deleted
const Script& force_release_script();
/// KEYS: lock, meta. -> {} free | {value, pttl, meta}
const Script& inspect_script();

}  // namespace dlock::detail::redis
