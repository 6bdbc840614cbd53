// redis+cluster:// in the conformance suite: a three-master Redis Cluster.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include "conformance/store_kinds.hpp"
#include "integration/redis/cluster_group.hpp"

namespace {
class RedisClusterEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return group_.url(); }

 private:
  dlock::test::ClusterGroup group_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(redis_cluster, [] { return std::make_unique<RedisClusterEnv>(); });
#endif
