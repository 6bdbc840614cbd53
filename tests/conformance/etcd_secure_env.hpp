// An etcd member that requires TLS client certificates (made with the openssl CLI) and has
// auth enabled, for the secure etcd conformance kinds.
#pragma once

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace dlock::test {

class EtcdSecureEnv : public StoreEnv {
 public:
  /// `scheme` is "etcds" (FIFO mutex) or "etcd+txn+tls" (transaction lock).
  explicit EtcdSecureEnv(std::string scheme) : scheme_(std::move(scheme)) {
    ::setenv("ETCDCTL_API", "3", 1);
    pki_ = std::make_unique<TestPki>(dir_.path());
    etcd_ = std::make_unique<EtcdCluster>(1, pki_->etcd_flags(), pki_->etcdctl_flags());
    if (etcd_->etcdctl("user add root:conf-pw") != 0 || etcd_->etcdctl("auth enable") != 0) {
      throw std::runtime_error("cannot enable etcd auth");
    }
  }
  std::string url() override {
    return scheme_ + "://root:conf-pw@" + etcd_->endpoints() + "/?prefix=conf-sec/&" +
           pki_->query();
  }

 private:
  std::string scheme_;
  TempDir dir_{"dlock-pki"};
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<EtcdCluster> etcd_;
};

}  // namespace dlock::test
