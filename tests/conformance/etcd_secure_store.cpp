// etcds:// (FIFO mutex) with TLS client certificates and user/password auth in the
// conformance suite.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/etcd_secure_env.hpp"

DLOCK_CONFORMANCE_STORE(etcd_secure,
                        [] { return std::make_unique<dlock::test::EtcdSecureEnv>("etcds"); });
#endif
