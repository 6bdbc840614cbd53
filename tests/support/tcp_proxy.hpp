// A TCP proxy owned by a test, on 127.0.0.1, between a client and a store, that can cut
// connections: `drop()` closes every connection (and refuses new ones until `restore()`),
// `blackhole()` keeps connections open but forwards nothing (replies never come).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace dlock::test {

class TcpProxy {
 public:
  /// Listens on a free loopback port and forwards to 127.0.0.1:`target_port`.
  explicit TcpProxy(std::uint16_t target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return port_; }
  /// Closes all connections; new ones are closed at once until `restore()`.
  void drop();
  /// Stops forwarding bytes (connections stay open) until `restore()`.
  void blackhole();
  /// Forwards normally again.
  void restore();

 private:
  enum class Mode { pass, drop, blackhole };
  void loop();

  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<Mode> mode_{Mode::pass};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dlock::test
