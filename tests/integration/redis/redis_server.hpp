// Test helper: a throwaway redis-server on a free loopback port in a temp dir (no persistence).
#pragma once

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace dlock::test {

class RedisServer {
 public:
  /// Starts redis-server with `extra` arguments. With `tls_port_args`, the caller passes the
  /// TLS options and `port()` is the TLS port (`--port 0` disables plain TCP).
  explicit RedisServer(std::vector<std::string> extra = {}, bool tls = false,
                       std::uint16_t port = 0)
      : extra_(std::move(extra)), tls_(tls), port_(port ? port : free_port()) {
    start();
  }
  ~RedisServer() { child_.stop(); }

  std::uint16_t port() const { return port_; }
  const TempDir& dir() const { return dir_; }
  std::string url(const std::string& query = "") const {
    return (tls_ ? "rediss://127.0.0.1:" : "redis://127.0.0.1:") + std::to_string(port_) +
           (query.empty() ? "" : "?" + query);
  }
  std::string log() const { return read_file(dir_.path() / "redis.log"); }

  void stop() { child_.stop(); }
  /// Sends `sig` to the server (SIGSTOP: it stops answering; SIGKILL: it dies).
  void signal(int sig) { child_.signal(sig); }
  void start() {
    std::vector<std::string> argv{"redis-server", "--bind", "127.0.0.1",
                                  "--save",       "",       "--appendonly",
                                  "no",           "--dir",  dir_.path().string()};
    if (tls_) {
      argv.insert(argv.end(), {"--port", "0", "--tls-port", std::to_string(port_)});
    } else {
      argv.insert(argv.end(), {"--port", std::to_string(port_)});
    }
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    child_ = Child(argv, (dir_.path() / "redis.log").string());
    if (!wait_for_port(port_, std::chrono::seconds(10))) {
      throw std::runtime_error("redis-server did not start: " + log());
    }
  }
  /// Stops the server and starts a fresh one (empty data, empty script cache) on the same port.
  void restart() {
    stop();
    start();
  }

 private:
  TempDir dir_{"dlock-redis"};
  std::vector<std::string> extra_;
  bool tls_;
  std::uint16_t port_;
  Child child_;
};

}  // namespace dlock::test
