// redis:// in the conformance suite: one redis-server on a free loopback port.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_REDIS
#include <csignal>

#include "conformance/store_kinds.hpp"
#include "integration/redis/redis_server.hpp"

namespace {
class RedisEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return server_.url(); }
  // Fault suite hooks: a crash (no persistence: every lock is gone), a restart, the port.
  bool kill_server() override {
    server_.signal(SIGKILL);
    server_.stop();
    return true;
  }
  bool restart_server() override {
    server_.start();
    return true;
  }
  std::uint16_t server_port() override { return server_.port(); }

 private:
  dlock::test::RedisServer server_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(redis, [] { return std::make_unique<RedisEnv>(); });
#endif
