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

}  // namespace

// Shared by the scripts that may free the lock: drops dead heads of the queue and returns the
// first live waiter (or nil) with its expiry; wakes that waiter. Times in server milliseconds.
const std::string& queue_functions() {
  static const std::string s = R"lua(
local function now_ms()
  local t = redis.call('time')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live_head(queue, qexp, now)
  while true do
    local head = redis.call('lindex', queue, 0)
    if not head then return nil end
    local exp = redis.call('zscore', qexp, head)
    if exp and tonumber(exp) > now then return head, tonumber(exp) end
    redis.call('lpop', queue)
    redis.call('zrem', qexp, head)
  end
end
local function wake_head(queue, qexp, prefix)
  local head = live_head(queue, qexp, now_ms())
  if head then redis.call('publish', prefix .. head, 'go') end
end
)lua";
  return s;
}

const Script& acquire_script() {
  static const Script s = make(queue_functions() + R"lua(
local now = now_ms()
local head, head_exp = live_head(KEYS[4], KEYS[5], now)
local free = redis.call('exists', KEYS[1]) == 0
if free and (not head or head == ARGV[1]) then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if head then
    redis.call('lpop', KEYS[4])
    redis.call('zrem', KEYS[5], ARGV[1])
  end
  local f = redis.call('incr', KEYS[2])
  if f == 1 then
    -- A fresh counter (first grant, or the server lost its data): start at the server's
    -- clock x 2^20, above any number an earlier counter reached unless it granted more
    -- than 2^20 times per second, so tokens keep growing across a restart.
    f = tonumber(redis.call('time')[1]) * 1048576
    redis.call('set', KEYS[2], string.format('%d', f))
  end
  redis.call('set', KEYS[3], ARGV[1] .. '\n' .. string.format('%d', f) .. '\n' .. ARGV[3],
             'PX', ARGV[2])
  return {1, f}
end
local wait
if free then wait = head_exp - now else wait = redis.call('pttl', KEYS[1]) end
if ARGV[4] == '1' then
  local life = tonumber(ARGV[5])
  if not redis.call('zscore', KEYS[5], ARGV[1]) then redis.call('rpush', KEYS[4], ARGV[1]) end
  redis.call('zadd', KEYS[5], now + life, ARGV[1])
  for _, k in ipairs({KEYS[4], KEYS[5]}) do
    if redis.call('pttl', k) < life then redis.call('pexpire', k, life) end
  end
end
return {0, wait}
)lua");
  return s;
}

const Script& release_script() {
  static const Script s = make(queue_functions() + R"lua(
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[2])
wake_head(KEYS[3], KEYS[4], ARGV[2])
return 1
)lua");
  return s;
}

const Script& leave_queue_script() {
  static const Script s = make(queue_functions() + R"lua(
redis.call('lrem', KEYS[2], 0, ARGV[1])
redis.call('zrem', KEYS[3], ARGV[1])
if redis.call('exists', KEYS[1]) == 0 then wake_head(KEYS[2], KEYS[3], ARGV[2]) end
return 1
)lua");
  return s;
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

const Script& force_release_script() {
  static const Script s = make(queue_functions() + R"lua(
local n = redis.call('del', KEYS[1])
redis.call('del', KEYS[2])
if n > 0 then wake_head(KEYS[3], KEYS[4], ARGV[1]) end
return n
)lua");
  return s;
}

const Script& inspect_script() {
  static const Script s = make(R"lua(
if redis.call('type', KEYS[1]).ok ~= 'string' then return {} end
local t = redis.call('pttl', KEYS[1])
return {redis.call('get', KEYS[1]), t, redis.call('get', KEYS[2]) or ''}
)lua");
  return s;
}

}  // namespace dlock::detail::redis
