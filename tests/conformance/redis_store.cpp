// redis:// in the conformance suite: one redis-server on a free loopback port.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include "conformance/store_kinds.hpp"
#include "integration/redis/redis_server.hpp"

namespace {
class RedisEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return server_.url(); }

 private:
  dlock::test::RedisServer server_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(redis, [] { return std::make_unique<RedisEnv>(); });
#endif
