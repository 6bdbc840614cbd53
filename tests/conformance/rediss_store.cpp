// rediss:// (Redis over TLS) in the conformance suite: one TLS-only redis-server on a free
// loopback port with certificates made by the openssl tool.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include "conformance/store_kinds.hpp"
#include "integration/redis/redis_server.hpp"
#include "integration/redis/test_certs.hpp"

namespace {
class RedissEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return server_.url("ca_file=" + certs_.ca.string()); }

 private:
  dlock::test::TempDir dir_{"dlock-rediss"};
  dlock::test::TestCerts certs_{dir_.path()};
  dlock::test::RedisServer server_{dlock::test::redis_tls_args(certs_), true};
};
}  // namespace

DLOCK_CONFORMANCE_STORE(rediss, [] { return std::make_unique<RedissEnv>(); });
#endif
