// Test helper: a Redis master, one replica and three sentinels watching them, all on free
// loopback ports (`redis-server --sentinel`, so the redis-sentinel package is not needed).
#pragma once

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/redis/redis_server.hpp"
#include "support/process.hpp"
#include "support/tcp_proxy.hpp"

namespace dlock::test {

class SentinelGroup {
 public:
  static constexpr const char* kMaster = "mymaster";

  /// With `replicate_through_proxy`, the replica replicates through a test-owned TCP proxy
  /// (`replication_link()`), so a test can cut replication without touching either server.
  explicit SentinelGroup(bool replicate_through_proxy = false)
      : master_(std::make_unique<RedisServer>()),
        link_(replicate_through_proxy ? std::make_unique<TcpProxy>(master_->port()) : nullptr),
        replica_(std::make_unique<RedisServer>(std::vector<std::string>{
            "--replicaof", "127.0.0.1", std::to_string(link_ ? link_->port() : master_->port())})) {
    for (int i = 0; i < 3; ++i) {
      auto port = free_port();
      auto dir = dir_.path() / ("s" + std::to_string(i));
      std::filesystem::create_directories(dir);
      auto conf = dir / "sentinel.conf";
      std::ofstream(conf) << "port " << port << "\nbind 127.0.0.1\ndir " << dir.string()
                          << "\nsentinel monitor " << kMaster << " 127.0.0.1 " << master_->port()
                          << " 2\nsentinel down-after-milliseconds " << kMaster
                          << " 2000\nsentinel failover-timeout " << kMaster << " 6000\n";
      sentinels_.emplace_back(std::vector<std::string>{"redis-server", conf.string(), "--sentinel"},
                              (dir / "log").string());
      ports_.push_back(port);
      if (!wait_for_port(port, std::chrono::seconds(10))) {
        throw std::runtime_error("sentinel did not start: " + read_file(dir / "log"));
      }
    }
  }

  /// redis+sentinel://127.0.0.1:s1,.../mymaster[?query]
  std::string url(const std::string& query = "") const {
    std::string s = "redis+sentinel://";
    for (std::size_t i = 0; i < ports_.size(); ++i) {
      s += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(ports_[i]);
    }
    return s + "/" + kMaster + (query.empty() ? "" : "?" + query);
  }
  const std::vector<std::uint16_t>& sentinel_ports() const { return ports_; }
  RedisServer& master() { return *master_; }
  RedisServer& replica() { return *replica_; }
  /// The replication proxy (only with `replicate_through_proxy`).
  TcpProxy& replication_link() { return *link_; }
  std::string sentinel_log(int i) const {
    return read_file(dir_.path() / ("s" + std::to_string(i)) / "log");
  }

 private:
  TempDir dir_{"dlock-sentinel"};
  std::unique_ptr<RedisServer> master_;
  std::unique_ptr<TcpProxy> link_;
  std::unique_ptr<RedisServer> replica_;
  std::vector<Child> sentinels_;
  std::vector<std::uint16_t> ports_;
};

}  // namespace dlock::test
