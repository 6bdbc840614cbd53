// Raw hiredis peers: R1's limit and the R3 counter.
#include <hiredis/hiredis.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

// Runs `iters` sequential pairs: `acquire(i)` (timed: the acquire latency) then
// `release(i)`, each returning whether it succeeded; the note names `what` and the context
// switches per pair (getrusage around the loop).
template <class Acquire, class Release>
RawResult time_pairs(long iters, const char* what, Acquire acquire, Release release) {
  RawResult out;
  out.lat_us.reserve(static_cast<std::size_t>(iters));
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  auto t0 = clock_type::now();
  for (long i = 0; i < iters; ++i) {
    auto s = clock_type::now();
    bool ok = acquire(i);
    out.lat_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
    ok = release(i) && ok;
    if (ok) out.pairs++;
  }
  out.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s, one connection; context switches/pair %.1f", what,
                static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw - ru0.ru_nvcsw - ru0.ru_nivcsw) /
                    std::max<double>(1, static_cast<double>(out.pairs)));
  out.note = buf;
  return out;
}

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
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto key = [](long i) { return "bench:raw:" + std::to_string(i % 64); };
  return time_pairs(
      iters, "hiredis SET NX PX + EVALSHA compare-and-delete",
      [&](long i) {
        const std::string k = key(i);
        auto* r = static_cast<redisReply*>(redisCommand(conn.c, "SET %b %b NX PX 10000", k.data(),
                                                        k.size(), token.data(), token.size()));
        const bool ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        return ok;
      },
      [&](long i) {
        const std::string k = key(i);
        auto* r = static_cast<redisReply*>(redisCommand(conn.c, "EVALSHA %b 1 %b %b", sha.data(),
                                                        sha.size(), k.data(), k.size(),
                                                        token.data(), token.size()));
        const bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        return ok;
      });
}

}  // namespace bench

#include "dlock/build_config.hpp"
#if DLOCK_WITH_REDIS
#include "src/redis/scripts.hpp"
#endif

namespace bench {
namespace {

[[maybe_unused]] std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

RawResult raw_redis_script_pairs(const std::string& hp, long iters) {
#if DLOCK_WITH_REDIS
  namespace rs = dlock::detail::redis;
  Conn conn(hp);
  for (auto* body : {&rs::acquire_script().body, &rs::release_script().body}) {
    freeReplyObject(conn.cmd("SCRIPT LOAD %b", *body));
  }
  const std::string token = "0123456789abcdef0123456789abcdef";
  const std::string entry = "0123456789abcdef:10000:" + token;
  const std::string meta = R"({"host":"bench","pid":1,"t":0})";
  auto eval = [&](const rs::Script& s, const std::string& k, std::vector<std::string> args) {
    std::vector<std::string> argv{"EVALSHA",
                                  s.sha1,
                                  "6",
                                  k,
                                  "{" + k + "}:fence",
                                  "{" + k + "}:meta",
                                  "{" + k + "}:queue",
                                  "{" + k + "}:qexp",
                                  "{" + k + "}:qdata"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(conn.c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    const bool ok =
        r && (r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer == 1
                                           : r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    return ok;
  };
  auto key = [](long i) { return "lock:bench:raws:" + std::to_string(i % 64); };
  return time_pairs(
      iters, "hiredis EVALSHA of dlock's acquire + release scripts",
      [&](long i) {
        return eval(rs::acquire_script(), key(i), {token, "10000", meta, "0", "5000", entry});
      },
      [&](long i) {
        const std::string k = key(i);
        return eval(rs::release_script(), k, {token, "{" + k + "}:wake:"});
      });
#else
  (void)hp;
  (void)iters;
  throw std::runtime_error("this build has no Redis store");
#endif
}

int print_redis_scripts() {
#if DLOCK_WITH_REDIS
  namespace rs = dlock::detail::redis;
  // Arguments for redis-benchmark: random lock names (the same shapes as dlock's keys).
  const std::string k = "lock:bench:r2limit:__rand_int__";
  const std::string keys = "6 " + k + " {" + k + "}:fence {" + k + "}:meta {" + k + "}:queue {" +
                           k + "}:qexp {" + k + "}:qdata";
  const std::string acquire_args = keys + " tok0123456789 10000 {} 0 10000 s:10000:tok0123456789";
  const std::string release_args = keys + " tok0123456789 wake:";
  std::printf("ACQUIRE_SCRIPT=%s\nACQUIRE_SHA=%s\nACQUIRE_ARGS=%s\n",
              shell_quote(rs::acquire_script().body).c_str(), rs::acquire_script().sha1.c_str(),
              shell_quote(acquire_args).c_str());
  std::printf("RELEASE_SCRIPT=%s\nRELEASE_SHA=%s\nRELEASE_ARGS=%s\n",
              shell_quote(rs::release_script().body).c_str(), rs::release_script().sha1.c_str(),
              shell_quote(release_args).c_str());
  return 0;
#else
  std::fprintf(stderr, "this build has no Redis store\n");
  return 1;
#endif
}

}  // namespace bench
