// redis+sentinel:// in the conformance suite: a master, a replica and three sentinels.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include "conformance/store_kinds.hpp"
#include "integration/redis/sentinel_group.hpp"

namespace {
class RedisSentinelEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return group_.url(); }

 private:
  dlock::test::SentinelGroup group_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(redis_sentinel, [] { return std::make_unique<RedisSentinelEnv>(); });
#endif
