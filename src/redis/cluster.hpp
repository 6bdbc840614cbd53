// Redis Cluster: hash slots, the slot map (CLUSTER SLOTS) and one connection per node.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/connection.hpp"

namespace dlock::detail::redis {

/// The cluster hash slot of `key` (CRC16 of the key or of its {hash tag}, mod 16384).
int key_slot(std::string_view key);

class ClusterMap {
 public:
  /// `base` gives credentials and timeouts; host/port come from the map.
  ClusterMap(asio::io_context& io, ConnectionOptions base, std::vector<Address> seeds);

  /// The connection to the master that owns `slot` (a seed while the map is unknown).
  std::shared_ptr<Connection> for_slot(int slot);
  /// The address of the master that owns `slot` (a seed while the map is unknown).
  Address owner(int slot);
  /// The connection to `host:port` (made on first use).
  std::shared_ptr<Connection> node(const std::string& host, std::uint16_t port);
  /// Reloads the slot map with CLUSTER SLOTS from a known node. Blocks (bounded by `ctx`).
  /// Returns why no node answered (unavailable, auth_failed, cancelled...), if none did.
  std::optional<Failure> refresh(const Context& ctx);
  /// Connections to every master of the current map.
  std::vector<std::shared_ptr<Connection>> masters();
  void close() noexcept;

 private:
  std::shared_ptr<Connection> node_locked(const std::string& host, std::uint16_t port);

  asio::io_context& io_;
  ConnectionOptions base_;
  std::vector<Address> seeds_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Connection>> nodes_;  // "host:port" -> connection
  std::vector<Address> owners_;                               // masters in the map
  std::array<std::int16_t, 16384> slot_owner_;                // index into owners_, -1: unknown
  bool closed_ = false;
};

}  // namespace dlock::detail::redis
