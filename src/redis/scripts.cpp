#include "redis/scripts.hpp"

#include <openssl/evp.h>

namespace dlock::detail::redis {
namespace {

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Script make(std::string body) {
  auto sha = sha1_hex(body);
  return Script{std::move(body), std::move(sha)};
}

// A script's PUBLISH calls as SPUBLISH (a cluster's shard channels).
std::string sharded_publish(std::string body) {
  for (auto at = body.find("'PUBLISH'"); at != std::string::npos; at = body.find("'PUBLISH'")) {
    body.replace(at, 9, "'SPUBLISH'");
  }
  return body;
}
}  // namespace

// Shared by the scripts. KEYS of every queue-aware script, in this order: lock, fence, meta,
// queue, qexp, qdata. Times in server milliseconds.
std::string queue_functions(bool sharded) {
  std::string s = R"lua(
local function now_ms()
  local t = redis.call('time')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function forget(K, entry)
  redis.call('zrem', K[5], entry)
  redis.call('hdel', K[6], entry)
end
-- Drops dead heads of the queue; returns the first live entry (or nil), its expiry and the
-- time (read only if the queue is not empty: an empty queue is the common case).
local function live_head(K)
  local now
  while true do
    local head = redis.call('lindex', K[4], 0)
    if not head then return nil, nil, now end
    now = now or now_ms()
    local exp = redis.call('zscore', K[5], head)
    if exp and tonumber(exp) > now then return head, tonumber(exp), now end
    redis.call('lpop', K[4])
    forget(K, head)
  end
end
local function next_fence(K)
  -- The counter, raised to a floor from the server's clock (2^20 per second, about one per
  -- microsecond). A counter that is behind (a promoted replica that missed the last INCRs, or
  -- a server that lost its data) still gives a token above every earlier one, unless this
  -- server's clock is behind the old one's by more than the time since that token: tokens
  -- never repeat across a failover or a restart.
  local f = redis.call('incr', K[2])
  local t = redis.call('time')
  local floor = tonumber(t[1]) * 1048576 + math.floor(tonumber(t[2]) * 1048576 / 1000000)
  if f < floor then
    f = floor
    redis.call('set', K[2], string.format('%d', f))
  end
  return f
end
local function grant(K, token, ttl, metadata)
  redis.call('set', K[1], token, 'PX', ttl)
  local f = next_fence(K)
  -- The clock floor makes the counter needless once the grant is over: it expires a second
  -- after the grant's TTL, so an unused lock name leaves no key behind.
  redis.call('pexpire', K[2], tonumber(ttl) + 1000)
  redis.call('set', K[3], token .. '\n' .. string.format('%d', f) .. '\n' .. metadata, 'PX', ttl)
  return f
end
-- Gives the free lock to the first live waiter and tells it on its channel (one message,
-- to one waiter: no herd, and the waiter needs no round trip to take it).
local function hand_over(K, prefix)
  local head = live_head(K)
  if not head then return end
  redis.call('lpop', K[4])
  local metadata = redis.call('hget', K[6], head) or ''
  forget(K, head)
  local sid, ttl, token = string.match(head, '^([^:]*):(%d+):(.+)$')
  if not token then return end
  local f = grant(K, token, ttl, metadata)
  redis.call('PUBLISH', prefix .. sid, token .. ' ' .. string.format('%d', f))
end
)lua";
  // A cluster uses shard channels: the message goes to the slot's node only.
  return sharded ? sharded_publish(std::move(s)) : s;
}

const Script& acquire_script(bool sharded) {
  static const std::string body = R"lua(
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  -- Handed to us (its message may be on its way): ours for a full TTL from now.
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('pexpire', KEYS[3], ARGV[2])
  local f = string.match(redis.call('get', KEYS[3]) or '', '^[^\n]*\n(%d+)\n')
  return {1, tonumber(f) or 0}
end
local head, head_exp, now = live_head(KEYS)
if not holder and (not head or head == ARGV[6]) then
  if head then
    redis.call('lpop', KEYS[4])
    forget(KEYS, head)
  end
  return {1, grant(KEYS, ARGV[1], ARGV[2], ARGV[3])}
end
local wait
if not holder then wait = head_exp - now else wait = redis.call('pttl', KEYS[1]) end
if ARGV[4] == '1' then
  local life = tonumber(ARGV[5])
  now = now or now_ms()
  if not redis.call('zscore', KEYS[5], ARGV[6]) then
    redis.call('rpush', KEYS[4], ARGV[6])
    redis.call('hset', KEYS[6], ARGV[6], ARGV[3])
  end
  redis.call('zadd', KEYS[5], now + life, ARGV[6])
  for i = 4, 6 do
    if redis.call('pttl', KEYS[i]) < life then redis.call('pexpire', KEYS[i], life) end
  end
end
return {0, wait}
)lua";
  static const Script s[2] = {make(queue_functions(false) + body),
                              make(queue_functions(true) + body)};
  return s[sharded ? 1 : 0];
}

const Script& release_script(bool sharded) {
  static const std::string body = R"lua(
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[3])
hand_over(KEYS, ARGV[2])
return 1
)lua";
  static const Script s[2] = {make(queue_functions(false) + body),
                              make(queue_functions(true) + body)};
  return s[sharded ? 1 : 0];
}

const Script& leave_queue_script(bool sharded) {
  static const std::string body = R"lua(
redis.call('lrem', KEYS[4], 0, ARGV[3])
forget(KEYS, ARGV[3])
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
  -- Handed to us while we gave up: pass it on.
  redis.call('del', KEYS[1], KEYS[3])
  holder = false
end
if not holder then hand_over(KEYS, ARGV[2]) end
return 1
)lua";
  static const Script s[2] = {make(queue_functions(false) + body),
                              make(queue_functions(true) + body)};
  return s[sharded ? 1 : 0];
}

const Script& extend_script() {
  static const Script s = make(R"lua(
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('pexpire', KEYS[2], ARGV[2])
  return 1
end
return 0
)lua");
  return s;
}

const Script& force_release_script(bool sharded) {
  // ARGV: wake prefix, revoked channel. The holder hears on the revoked channel which token
  // went (its loss signal fires at once); the next waiter gets the lock.
  static const std::string body = R"lua(
local holder = false
if redis.call('type', KEYS[1]).ok == 'string' then holder = redis.call('get', KEYS[1]) end
local n = redis.call('del', KEYS[1])
redis.call('del', KEYS[3])
if n > 0 then
  if type(holder) == 'string' then redis.call('PUBLISH', ARGV[2], holder) end
  hand_over(KEYS, ARGV[1])
end
return n
)lua";
  static const Script s[2] = {make(queue_functions(false) + body),
                              make(queue_functions(true) + sharded_publish(body))};
  return s[sharded ? 1 : 0];
}
const Script& inspect_script() {
  // KEYS: lock, meta, queue, qexp. Reply: {held, token, pttl, meta, live waiters}; a lock key
  // of another type (not a lock) counts as free.
  static const Script s = make(R"lua(
local waiters = 0
local entries = redis.call('lrange', KEYS[3], 0, -1)
if #entries > 0 then
  local t = redis.call('time')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, e in ipairs(entries) do
    local exp = redis.call('zscore', KEYS[4], e)
    if exp and tonumber(exp) > now then waiters = waiters + 1 end
  end
end
if redis.call('type', KEYS[1]).ok ~= 'string' then return {0, '', -2, '', waiters} end
local t = redis.call('pttl', KEYS[1])
return {1, redis.call('get', KEYS[1]), t, redis.call('get', KEYS[2]) or '', waiters}
)lua");
  return s;
}

}  // namespace dlock::detail::redis
