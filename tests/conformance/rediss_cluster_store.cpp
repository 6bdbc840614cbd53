// rediss+cluster:// (Redis Cluster over TLS) in the conformance suite: a three-master,
// TLS-only cluster with certificates made by the openssl tool.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include "conformance/store_kinds.hpp"
#include "integration/redis/cluster_group.hpp"
#include "integration/redis/test_certs.hpp"

namespace {
class RedissClusterEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return group_.url("ca_file=" + certs_.ca.string()); }

 private:
  dlock::test::TempDir dir_{"dlock-rediss-cluster"};
  dlock::test::TestCerts certs_{dir_.path()};
  dlock::test::ClusterGroup group_{certs_};
};
}  // namespace

DLOCK_CONFORMANCE_STORE(rediss_cluster, [] { return std::make_unique<RedissClusterEnv>(); });
#endif
