// Test helper: a three-master Redis Cluster on free loopback ports (`redis-cli --cluster
// create`), no replicas.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/redis/redis_server.hpp"
#include "support/process.hpp"

namespace dlock::test {

class ClusterGroup {
 public:
  ClusterGroup() {
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(std::make_unique<RedisServer>(
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                   "nodes.conf", "--cluster-node-timeout", "2000"},
          false, node_port()));
    }
    std::vector<std::string> argv{"redis-cli", "--cluster", "create"};
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
        Child info({"redis-cli", "-p", std::to_string(n->port()), "CLUSTER", "INFO"}, out);
        info.wait(std::chrono::seconds(10));
        if (read_file(out).find("cluster_state:ok") != std::string::npos) break;
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(30)) {
          throw std::runtime_error("cluster did not become ok: " + read_file(out));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  /// redis+cluster://127.0.0.1:p1,127.0.0.1:p2[?query]
  std::string url(const std::string& query = "") const {
    return "redis+cluster://127.0.0.1:" + std::to_string(nodes_[0]->port()) +
           ",127.0.0.1:" + std::to_string(nodes_[1]->port()) + (query.empty() ? "" : "?" + query);
  }
  RedisServer& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }

 private:
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

  TempDir dir_{"dlock-cluster"};
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace dlock::test
