// The stores the conformance suite runs on. A store joins the suite with one line in its own
// file under tests/conformance/:
//
//   DLOCK_CONFORMANCE_STORE(redis, [] { return std::make_unique<RedisEnv>(); });
//
// The environment is started once per test process, on first use, and stopped at exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dlock::test {

/// One running store (a server the fixture started, or nothing for in-process stores).
class StoreEnv {
 public:
  virtual ~StoreEnv() = default;
  /// A URL that opens a new store object on the same data (same server, same namespace).
  virtual std::string url() = 0;
  /// Whether other processes can share locks through `url()` (false for memory://).
  virtual bool cross_process() { return true; }
  /// Fault suite: stops the store's server like a crash (SIGKILL). False if there is none.
  virtual bool kill_server() { return false; }
  /// Fault suite: starts the server again on the same address after `kill_server()`.
  virtual bool restart_server() { return false; }
  /// Fault suite: the server's loopback TCP port (0 if none); the suite puts a proxy in
  /// front of it by replacing ":<port>" in `url()` with the proxy's port.
  virtual std::uint16_t server_port() { return 0; }
  /// Fault suite: how long after a holder's crash its lock is free at the latest, for a
  /// grant of `ttl` (stores that bind locks to a session: the session timeout).
  virtual std::chrono::milliseconds crash_release_bound(std::chrono::milliseconds ttl) {
    return ttl;
  }
};

struct StoreKind {
  std::string name;
  std::function<std::unique_ptr<StoreEnv>()> start;
};

std::vector<StoreKind>& store_kinds();
/// The running environment of `name` (started on first call).
StoreEnv& store_env(const std::string& name);

}  // namespace dlock::test

#define DLOCK_CONFORMANCE_STORE(name, factory)                                        \
  static const bool dlock_conformance_registered_##name = [] {                        \
    ::dlock::test::store_kinds().push_back(::dlock::test::StoreKind{#name, factory}); \
    return true;                                                                      \
  }()
