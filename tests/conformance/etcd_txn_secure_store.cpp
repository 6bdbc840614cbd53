// etcd+txn+tls:// (the seed's transaction lock) with TLS client certificates and
// user/password auth in the conformance suite.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/etcd_secure_env.hpp"

DLOCK_CONFORMANCE_STORE(etcd_txn_secure, [] {
  return std::make_unique<dlock::test::EtcdSecureEnv>("etcd+txn+tls");
});
#endif
