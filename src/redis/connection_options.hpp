// Where and how a Redis connection connects: the address (or the Sentinel group that names
// it), credentials, database, timeouts and TLS settings.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace asio::ssl {
class context;
}  // namespace asio::ssl

namespace dlock::detail::redis {

/// A host and port.
struct Address {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const Address&) const = default;
};

/// A Sentinel group: the sentinels asked for the address of the master named `master`. The
/// sentinel that answered last is asked first next time (shared by every connection of a
/// store object). Thread-safe.
class Sentinels {
 public:
  Sentinels(std::vector<Address> sentinels, std::string master, std::string user,
            std::string password);

  /// The sentinels in the order to ask them.
  std::vector<Address> order() const;
  /// Moves `who` to the front (it answered).
  void answered(const Address& who);
  /// The master group's name.
  const std::string& master() const noexcept { return master_; }
  /// ACL user for AUTH at the sentinels (empty: the default user).
  const std::string& user() const noexcept { return user_; }
  /// Password of the sentinels (empty: no AUTH).
  const std::string& password() const noexcept { return password_; }

 private:
  mutable std::mutex mu_;
  std::vector<Address> sentinels_;
  const std::string master_, user_, password_;
};

/// Where and how to connect.
struct ConnectionOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string user;
  std::string password;
  bool has_password = false;
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{2000};
  /// TLS: set for rediss://. `tls_name` is the SNI and the name verified in the certificate
  /// (empty: the address connected to). With Sentinel, the sentinels are reached over TLS too.
  std::shared_ptr<asio::ssl::context> tls;
  std::string tls_name;
  bool tls_verify = true;
  /// A subscriber connection skips SELECT (pub/sub ignores databases).
  bool subscriber = false;
  /// Sentinel: asked for the master's address before each connect (host/port are then
  /// ignored); the handshake also checks with ROLE that the node is a master.
  std::shared_ptr<Sentinels> sentinels;
};

}  // namespace dlock::detail::redis
