// etcds:// with user/password auth in the conformance suite: one etcd member that requires
// TLS client certificates (made with the openssl CLI) and has auth enabled.
#include "dlock/build_config.hpp"
#if DLOCK_WITH_ETCD
#include <cstdlib>

#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace {
class EtcdSecureEnv : public dlock::test::StoreEnv {
 public:
  EtcdSecureEnv() {
    ::setenv("ETCDCTL_API", "3", 1);
    pki_ = std::make_unique<dlock::test::TestPki>(dir_.path());
    etcd_ =
        std::make_unique<dlock::test::EtcdCluster>(1, pki_->etcd_flags(), pki_->etcdctl_flags());
    if (etcd_->etcdctl("user add root:conf-pw") != 0 || etcd_->etcdctl("auth enable") != 0) {
      throw std::runtime_error("cannot enable etcd auth");
    }
  }
  std::string url() override {
    return "etcds://root:conf-pw@" + etcd_->endpoints() + "/?prefix=conf-sec/&" + pki_->query();
  }

 private:
  dlock::test::TempDir dir_{"dlock-pki"};
  std::unique_ptr<dlock::test::TestPki> pki_;
  std::unique_ptr<dlock::test::EtcdCluster> etcd_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(etcd_secure, [] { return std::make_unique<EtcdSecureEnv>(); });
#endif
