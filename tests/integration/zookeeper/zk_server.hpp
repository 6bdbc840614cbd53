// Test helper: a throwaway standalone ZooKeeper server (Debian's zookeeper package, run from
// its jar with the JVM) with its own zoo.cfg and dataDir in a temporary directory, on a free
// loopback port. Lean on purpose: small heap, no admin server, no four-letter words, a short
// tick so that session timeouts of a second are allowed.
#pragma once

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "dlock/error.hpp"
#include "dlock/zookeeper.hpp"
#include "support/process.hpp"

namespace dlock::test {

class ZooKeeperServer {
 public:
  /// The server's tick; session timeouts from 2 ticks to 60 s are accepted.
  static constexpr int kTickMs = 200;

  ZooKeeperServer() : port_(free_port()) {
    std::filesystem::create_directories(dir_.path() / "data");
    std::ofstream(dir_.path() / "zoo.cfg")
        << "tickTime=" << kTickMs << "\n"
        << "dataDir=" << (dir_.path() / "data").string() << "\n"
        << "clientPort=" << port_ << "\nclientPortAddress=127.0.0.1\n"
        << "admin.enableServer=false\n4lw.commands.whitelist=\n"
        << "maxClientCnxns=0\nforceSync=no\nmaxSessionTimeout=60000\n";
    start();
  }
  ~ZooKeeperServer() { stop(); }
  ZooKeeperServer(const ZooKeeperServer&) = delete;
  ZooKeeperServer& operator=(const ZooKeeperServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// "127.0.0.1:<port>".
  std::string hosts() const { return "127.0.0.1:" + std::to_string(port_); }
  /// zk://127.0.0.1:<port><root>[?query].
  std::string url(const std::string& root = "/dlock-test", const std::string& query = "") const {
    return "zk://" + hosts() + root + (query.empty() ? "" : "?" + query);
  }
  std::string log() const { return read_file(dir_.path() / "zookeeper.log"); }

  /// Starts the server and waits until it establishes sessions (its port opens earlier).
  void start() {
    child_ = Child(
        {"java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
         "-Dzookeeper.log.dir=" + dir_.path().string(), "-cp", "/usr/share/java/zookeeper.jar",
         "org.apache.zookeeper.server.ZooKeeperServerMain", (dir_.path() / "zoo.cfg").string()},
        (dir_.path() / "zookeeper.log").string());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    for (;;) {
      if (wait_for_port(port_, std::chrono::milliseconds(200))) {
        try {
          open(ZooKeeperConfig{.hosts = hosts(),
                               .root = "/dlock-ready",
                               .connect_timeout = std::chrono::seconds(3)},
               Context::with_timeout(std::chrono::seconds(5)))
              .close();
          return;
        } catch (const Error&) {
          // Not serving yet.
        }
      }
      if (!child_.running() || std::chrono::steady_clock::now() > until) {
        throw std::runtime_error("zookeeper did not start: " + log());
      }
    }
  }

  /// SIGTERM, SIGKILL after 5 s.
  void stop() {
    if (child_.pid() > 0) child_.stop(std::chrono::milliseconds(5000));
  }

  /// Sends `sig` to the server (SIGSTOP / SIGCONT pause and resume it).
  void signal(int sig) { child_.signal(sig); }

 private:
  TempDir dir_{"dlock-zookeeper"};
  std::uint16_t port_;
  Child child_;
};

/// The one server of the test binary (started on first use, stopped at exit).
inline ZooKeeperServer& shared_zookeeper() {
  static ZooKeeperServer server;
  return server;
}

}  // namespace dlock::test
