// etcd:// (FIFO mutex) in the conformance suite: one etcd member on free loopback ports.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace {
class EtcdFifoEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return "etcd://" + etcd_.endpoints() + "/?prefix=conf/"; }

  // Fault suite hooks: kill and restart the member (its data survives), proxy its port.
  bool kill_server() override {
    etcd_.kill(0);
    return true;
  }
  bool restart_server() override {
    etcd_.start(0);
    etcd_.wait_healthy(std::chrono::seconds(20));
    return true;
  }
  std::uint16_t server_port() override { return etcd_.client_port(0); }

 private:
  dlock::test::EtcdCluster etcd_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(etcd, [] { return std::make_unique<EtcdFifoEnv>(); });
#endif
