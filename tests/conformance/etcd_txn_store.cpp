// etcd+txn:// (the seed's transaction lock) in the conformance suite: one etcd member on free
// loopback ports.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/etcd_env.hpp"

DLOCK_CONFORMANCE_STORE(etcd_txn, [] {
  return std::make_unique<dlock::test::EtcdEnv>("etcd+txn", "conf-txn/");
});
#endif
