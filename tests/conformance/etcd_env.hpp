// One etcd member on free loopback ports for the plain etcd conformance kinds, with the fault
// suite's hooks (kill and restart the member, its data surviving; proxy its client port).
#pragma once

#include <chrono>
#include <string>

#include "conformance/store_kinds.hpp"
#include "integration/etcd/etcd_server.hpp"

namespace dlock::test {

class EtcdEnv : public StoreEnv {
 public:
  /// `scheme` is "etcd" (FIFO mutex) or "etcd+txn"; `prefix` keeps the kinds apart.
  EtcdEnv(std::string scheme, std::string prefix)
      : scheme_(std::move(scheme)), prefix_(std::move(prefix)) {}
  std::string url() override { return scheme_ + "://" + etcd_.endpoints() + "/?prefix=" + prefix_; }
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
  std::string scheme_, prefix_;
  EtcdCluster etcd_;
};

}  // namespace dlock::test
