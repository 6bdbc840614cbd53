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

Script make(std::string_view body) { return Script{body, sha1_hex(body)}; }

}  // namespace

const Script& acquire_script() {
  static const Script s = make(R"lua(
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local f = redis.call('incr', KEYS[2])
  redis.call('set', KEYS[3], ARGV[1] .. '\n' .. string.format('%d', f) .. '\n' .. ARGV[3],
             'PX', ARGV[2])
  return {1, f}
end
return {0, redis.call('pttl', KEYS[1])}
)lua");
  return s;
}

const Script& release_script() {
  static const Script s = make(R"lua(
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1], KEYS[2])
  redis.call('publish', ARGV[2], 'released')
  return 1
end
return 0
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
  static const Script s = make(R"lua(
local n = redis.call('del', KEYS[1])
redis.call('del', KEYS[2])
if n > 0 then redis.call('publish', ARGV[1], 'released') end
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
