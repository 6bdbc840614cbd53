// Test helper: a Redis master, one replica and three sentinels watching them, all on free
// loopback ports (`redis-server --sentinel`, so the redis-sentinel package is not needed);
// optionally all TLS-only (clients, replication and the sentinels' own links).
#pragma once

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/redis/redis_server.hpp"
#include "integration/redis/test_certs.hpp"
#include "support/process.hpp"
#include "support/tcp_proxy.hpp"

namespace dlock::test {

class SentinelGroup {
 public:
  static constexpr const char* kMaster = "mymaster";

  /// With `replicate_through_proxy`, the replica replicates through a test-owned TCP proxy
  /// (`replication_link()`), so a test can cut replication without touching either server.
  explicit SentinelGroup(bool replicate_through_proxy = false) { start(replicate_through_proxy); }
  /// A TLS-only group: the master, the replica and the sentinels accept only TLS (`certs`:
  /// server certificate for 127.0.0.1, client certificates optional); replication and the
  /// sentinels' links to the servers use TLS too.
  explicit SentinelGroup(const TestCerts& certs) : certs_(&certs) { start(false); }

  /// redis+sentinel://127.0.0.1:s1,.../mymaster[?query] (rediss+sentinel:// in TLS mode; the
  /// query must then name the CA, e.g. `ca=...`).
  std::string url(const std::string& query = "") const {
    std::string s = certs_ ? "rediss+sentinel://" : "redis+sentinel://";
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
  void start(bool replicate_through_proxy) {
    std::vector<std::string> tls;
    if (certs_) {
      tls = redis_tls_args(*certs_);
      tls.insert(tls.end(), {"--tls-replication", "yes"});
    }
    master_ = std::make_unique<RedisServer>(tls, certs_ != nullptr);
    if (replicate_through_proxy) link_ = std::make_unique<TcpProxy>(master_->port());
    auto replica_args = tls;
    replica_args.insert(
        replica_args.end(),
        {"--replicaof", "127.0.0.1", std::to_string(link_ ? link_->port() : master_->port())});
    replica_ = std::make_unique<RedisServer>(replica_args, certs_ != nullptr);
    for (int i = 0; i < 3; ++i) {
      auto port = free_port();
      auto dir = dir_.path() / ("s" + std::to_string(i));
      std::filesystem::create_directories(dir);
      auto conf = dir / "sentinel.conf";
      std::ofstream out(conf);
      if (certs_) {
        out << "port 0\ntls-port " << port << "\ntls-cert-file " << certs_->server_cert.string()
            << "\ntls-key-file " << certs_->server_key.string() << "\ntls-ca-cert-file "
            << certs_->ca.string() << "\ntls-auth-clients optional\ntls-replication yes\n";
      } else {
        out << "port " << port << "\n";
      }
      out << "bind 127.0.0.1\ndir " << dir.string() << "\nsentinel monitor " << kMaster
          << " 127.0.0.1 " << master_->port() << " 2\nsentinel down-after-milliseconds " << kMaster
          << " 2000\nsentinel failover-timeout " << kMaster << " 6000\n";
      out.close();
      sentinels_.emplace_back(std::vector<std::string>{"redis-server", conf.string(), "--sentinel"},
                              (dir / "log").string());
      ports_.push_back(port);
      if (!wait_for_port(port, std::chrono::seconds(10))) {
        throw std::runtime_error("sentinel did not start: " + read_file(dir / "log"));
      }
    }
  }

  const TestCerts* certs_ = nullptr;
  TempDir dir_{"dlock-sentinel"};
  std::unique_ptr<RedisServer> master_;
  std::unique_ptr<TcpProxy> link_;
  std::unique_ptr<RedisServer> replica_;
  std::vector<Child> sentinels_;
  std::vector<std::uint16_t> ports_;
};

}  // namespace dlock::test
