// Plain commands to one Redis node, through the library's own connection code, for test setup
// and for checking what the store wrote; and the errc of a failing call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "dlock/error.hpp"
#include "dlock/redis.hpp"
#include "integration/redis/test_certs.hpp"
#include "redis/config.hpp"
#include "redis/connection.hpp"

namespace dlock::test {

class RawClient {
 public:
  /// Plain TCP to 127.0.0.1:`port`.
  explicit RawClient(std::uint16_t port) {
    detail::redis::ConnectionOptions o;
    o.port = port;
    conn_ = detail::redis::Connection::create(io_.context(), o);
  }
  /// TLS to 127.0.0.1:`port`, verified with `certs.ca`.
  RawClient(std::uint16_t port, const TestCerts& certs) {
    RedisConfig c;
    c.port = port;
    c.tls = true;
    c.ca_file = certs.ca.string();
    conn_ = detail::redis::Connection::create(io_.context(), detail::redis::connection_options(c));
  }
  ~RawClient() { conn_->close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  /// One command; a RESP error comes back as a value, not thrown. Throws `Error` when the
  /// command gets no reply.
  detail::redis::RespValue cmd(const std::vector<std::string_view>& args) {
    auto r = detail::redis::request(*conn_, Context::with_timeout(std::chrono::seconds(5)), args);
    if (!r.ok()) throw Error(r.failure().code, "redis", "", "test", r.failure().detail);
    return std::move(r).value();
  }

 private:
  detail::redis::IoThread io_;
  std::shared_ptr<detail::redis::Connection> conn_;
};

/// The errc `fn` throws (errc{} if it does not throw).
inline errc code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return static_cast<errc>(e.code().value());
  }
  return errc{};
}

}  // namespace dlock::test
