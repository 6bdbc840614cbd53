// zk:// in the conformance suite: one standalone ZooKeeper server (from Debian's jar) on a
// free loopback port, its data in a temporary directory.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_ZOOKEEPER
#include <algorithm>

#include "conformance/store_kinds.hpp"
#include "integration/zookeeper/zk_server.hpp"

namespace {
class ZooKeeperEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return server_.url("/conformance"); }
  std::uint16_t server_port() override { return server_.port(); }
  // A crashed holder's nodes go when the server expires its session: after the URL's
  // session timeout (the default, 10 s), whatever the lock's TTL.
  std::chrono::milliseconds crash_release_bound(std::chrono::milliseconds ttl) override {
    return std::max<std::chrono::milliseconds>(ttl, std::chrono::seconds(10));
  }

 private:
  dlock::test::ZooKeeperServer server_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(zk, [] { return std::make_unique<ZooKeeperEnv>(); });
#endif
