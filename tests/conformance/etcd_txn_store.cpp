// etcd+txn:// (the seed's transaction lock) in the conformance suite: one etcd member on free
// loopback ports.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace {
class EtcdTxnEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return "etcd+txn://" + etcd_.endpoints() + "/?prefix=conf-txn/"; }

 private:
  dlock::test::EtcdCluster etcd_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(etcd_txn, [] { return std::make_unique<EtcdTxnEnv>(); });
#endif
