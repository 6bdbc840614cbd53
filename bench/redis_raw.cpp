// Raw hiredis peers: R1's limit and the R3 counter.
#include <hiredis/hiredis.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;

struct Conn {
  explicit Conn(const std::string& host_port) {
    auto colon = host_port.rfind(':');
    c = redisConnect(host_port.substr(0, colon).c_str(), std::stoi(host_port.substr(colon + 1)));
    if (!c || c->err) throw std::runtime_error("redis connect failed: " + host_port);
  }
  ~Conn() { redisFree(c); }
  redisReply* cmd(const char* fmt, const std::string& a = {}, const std::string& b = {}) {
    auto* r =
        static_cast<redisReply*>(redisCommand(c, fmt, a.data(), a.size(), b.data(), b.size()));
    if (!r) throw std::runtime_error("redis command failed");
    return r;
  }
  redisContext* c;
};

const char* kRelease =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

class RedisCounter final : public Counter {
 public:
  RedisCounter(const std::string& hp, std::string key) : conn_(hp), key_(std::move(key)) {}
  long get() override {
    auto* r = conn_.cmd("GET %b", key_);
    long v = r->type == REDIS_REPLY_STRING ? std::stol(std::string(r->str, r->len)) : 0;
    freeReplyObject(r);
    return v;
  }
  void set(long v) override { freeReplyObject(conn_.cmd("SET %b %b", key_, std::to_string(v))); }

 private:
  Conn conn_;
  std::string key_;
};

}  // namespace

std::unique_ptr<Counter> make_redis_counter(const std::string& hp, const std::string& key) {
  return std::make_unique<RedisCounter>(hp, key);
}

RawResult raw_redis_pairs(const std::string& hp, long iters, long /*workers*/) {
  Conn conn(hp);
  auto* loaded = static_cast<redisReply*>(redisCommand(conn.c, "SCRIPT LOAD %s", kRelease));
  if (!loaded || loaded->type != REDIS_REPLY_STRING) throw std::runtime_error("SCRIPT LOAD");
  const std::string sha(loaded->str, loaded->len);
  freeReplyObject(loaded);
  RawResult out;
  out.lat_us.reserve(static_cast<std::size_t>(iters));
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto t0 = clock_type::now();
  for (long i = 0; i < iters; ++i) {
    const std::string key = "bench:raw:" + std::to_string(i % 64);
    auto s = clock_type::now();
    auto* r = static_cast<redisReply*>(redisCommand(conn.c, "SET %b %b NX PX 10000", key.data(),
                                                    key.size(), token.data(), token.size()));
    out.lat_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = static_cast<redisReply*>(redisCommand(conn.c, "EVALSHA %b 1 %b %b", sha.data(), sha.size(),
                                              key.data(), key.size(), token.data(), token.size()));
    ok = ok && r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (ok) out.pairs++;
  }
  out.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  out.note = "hiredis SET NX PX + EVALSHA compare-and-delete, one connection";
  return out;
}

}  // namespace bench
