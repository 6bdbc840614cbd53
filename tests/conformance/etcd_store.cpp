// etcd:// (FIFO mutex) in the conformance suite: one etcd member on free loopback ports.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace {
class EtcdFifoEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return "etcd://" + etcd_.endpoints() + "/?prefix=conf/"; }

 private:
  dlock::test::EtcdCluster etcd_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(etcd, [] { return std::make_unique<EtcdFifoEnv>(); });
#endif
