// Test helper: a three-master Redis Cluster on free loopback ports (`redis-cli --cluster
// create`), no replicas; optionally TLS-only (clients and the cluster bus).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/redis/redis_server.hpp"
#include "integration/redis/test_certs.hpp"
#include "support/process.hpp"

namespace dlock::test {

class ClusterGroup {
 public:
  /// A plain-TCP cluster.
  ClusterGroup() { start(); }
  /// A TLS-only cluster (`--port 0`): clients, `redis-cli` and the cluster bus
  /// (`--tls-cluster yes`) use TLS with `certs` (server certificate for 127.0.0.1, client
  /// certificates optional).
  explicit ClusterGroup(const TestCerts& certs) : certs_(certs) { start(); }

  /// redis+cluster://127.0.0.1:p1,127.0.0.1:p2[?query] (rediss+cluster:// in TLS mode; the
  /// query must then name the CA, e.g. `ca=...`).
  std::string url(const std::string& query = "") const {
    return std::string(certs_ ? "rediss" : "redis") +
           "+cluster://127.0.0.1:" + std::to_string(nodes_[0]->port()) +
           ",127.0.0.1:" + std::to_string(nodes_[1]->port()) + (query.empty() ? "" : "?" + query);
  }
  /// Node `i` (0..2); its `port()` is the TLS port in TLS mode.
  RedisServer& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
  /// Whether the cluster is TLS-only.
  bool tls() const { return certs_.has_value(); }

 private:
  // `redis-cli` and its TLS options (in TLS mode).
  std::vector<std::string> cli() const {
    std::vector<std::string> argv{"redis-cli"};
    if (certs_) argv.insert(argv.end(), {"--tls", "--cacert", certs_->ca.string()});
    return argv;
  }

  void start() {
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> args{"--cluster-enabled",      "yes",
                                    "--cluster-config-file",  "nodes.conf",
                                    "--cluster-node-timeout", "2000"};
      if (certs_) {
        args.insert(args.end(), {"--tls-cluster", "yes"});
        auto tls = redis_tls_args(*certs_);
        args.insert(args.end(), tls.begin(), tls.end());
      }
      // In TLS mode the node's port is its TLS port (and the bus is at that port + 10000).
      nodes_.push_back(std::make_unique<RedisServer>(args, certs_.has_value(), node_port()));
    }
    std::vector<std::string> argv = cli();
    argv.insert(argv.end(), {"--cluster", "create"});
    for (auto& n : nodes_) argv.push_back("127.0.0.1:" + std::to_string(n->port()));
    argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    const auto log = (dir_.path() / "create.log").string();
    Child create(argv, log);
    if (create.wait(std::chrono::seconds(60)) != 0) {
      throw std::runtime_error("redis-cli --cluster create failed: " + read_file(log));
    }
    // Every node must see the whole cluster before tests start.
    for (auto& n : nodes_) {
      auto t0 = std::chrono::steady_clock::now();
      for (;;) {
        TempDir out_dir("dlock-cluster-info");
        auto out = (out_dir.path() / "info").string();
        auto info_argv = cli();
        info_argv.insert(info_argv.end(), {"-p", std::to_string(n->port()), "CLUSTER", "INFO"});
        Child info(info_argv, out);
        info.wait(std::chrono::seconds(10));
        if (read_file(out).find("cluster_state:ok") != std::string::npos) break;
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(30)) {
          throw std::runtime_error("cluster did not become ok: " + read_file(out));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  // A node also listens on port + 10000 (the cluster bus): both must be free.
  static std::uint16_t node_port() {
    for (;;) {
      auto p = free_port();
      if (p > 55000) continue;
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(p + 10000));
      const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (ok) return p;
    }
  }

  std::optional<TestCerts> certs_;
  TempDir dir_{"dlock-cluster"};
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace dlock::test
