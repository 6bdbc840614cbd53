#include "redis/config.hpp"

#include <asio/ssl.hpp>

#include "core/url.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::redis {
namespace {

[[noreturn]] void bad(const std::string& scheme, const std::string& why) {
  throw Error(errc::invalid_argument, scheme, "", "config", why);
}

}  // namespace

RedisConfig parse_redis_url(const std::string& url) {
  auto u = parse_url(url, 6379);
  const bool tls = u.scheme == "rediss";
  if (tls) {
    check_query_keys(u, {"prefix", "connect_timeout", "command_timeout", "min_replicas",
                         "replica_timeout", "ca", "cert", "key", "sni", "verify"});
  } else {
    check_query_keys(
        u, {"prefix", "connect_timeout", "command_timeout", "min_replicas", "replica_timeout"});
  }
  if (u.endpoints.size() != 1) bad(u.scheme, "expected exactly one host:port");
  RedisConfig c;
  c.host = u.endpoints[0].host;
  c.port = u.endpoints[0].port;
  c.user = u.user;
  c.password = u.password;
  if (!u.has_password && !u.user.empty()) {
    // redis://secret@host is the common "password only" spelling.
    c.password = u.user;
    c.user.clear();
  }
  if (!u.path.empty() && u.path != "/") {
    auto db = u.path.substr(1);
    if (db.empty() || db.size() > 5 || db.find_first_not_of("0123456789") != std::string::npos) {
      bad(u.scheme, "the path must be a database number, e.g. /2");
    }
    c.db = std::stoi(db);
  }
  c.prefix = query_string(u, "prefix", c.prefix);
  c.connect_timeout = query_duration(u, "connect_timeout", c.connect_timeout);
  c.command_timeout = query_duration(u, "command_timeout", c.command_timeout);
  c.min_replicas = static_cast<int>(query_int(u, "min_replicas", 0, 0, 1000));
  c.replica_timeout = query_duration(u, "replica_timeout", c.replica_timeout);
  c.tls = tls;
  if (tls) {
    c.tls_ca_file = query_string(u, "ca", "");
    c.tls_cert_file = query_string(u, "cert", "");
    c.tls_key_file = query_string(u, "key", "");
    c.tls_sni = query_string(u, "sni", "");
    c.tls_verify = query_bool(u, "verify", true);
  }
  return c;
}

std::string redacted_url(const RedisConfig& c) {
  std::string s = c.tls ? "rediss://" : "redis://";
  if (!c.user.empty()) s += c.user + (c.password.empty() ? "@" : ":***@");
  if (c.user.empty() && !c.password.empty()) s += ":***@";
  s += c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
  s += ":" + std::to_string(c.port);
  if (c.db != 0) s += "/" + std::to_string(c.db);
  return s;
}

ConnectionOptions connection_options(const RedisConfig& c) {
  const std::string scheme = c.tls ? "rediss" : "redis";
  if (c.host.empty()) bad(scheme, "empty host");
  if (c.port == 0) bad(scheme, "port 0");
  if (c.db < 0) bad(scheme, "negative database number");
  if (c.connect_timeout.count() <= 0) bad(scheme, "connect_timeout must be > 0");
  if (c.command_timeout.count() <= 0) bad(scheme, "command_timeout must be > 0");
  if (c.min_replicas < 0) bad(scheme, "min_replicas must be >= 0");
  if (c.min_replicas > 0 && c.replica_timeout.count() <= 0) {
    bad(scheme, "replica_timeout must be > 0");
  }
  if (!c.prefix.empty() && c.prefix.front() == '{') {
    bad(scheme, "the prefix must not start with '{' (companion keys do)");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    bad(scheme, "a client certificate needs its key, and the reverse");
  }
  ConnectionOptions o;
  o.host = c.host;
  o.port = c.port;
  o.user = c.user;
  o.password = c.password;
  o.has_password = !c.password.empty();
  o.db = c.db;
  o.connect_timeout = c.connect_timeout;
  o.command_timeout = c.command_timeout;
  if (c.tls) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    std::error_code ec;
    if (c.tls_ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(c.tls_ca_file, ec);
    }
    if (ec) bad(scheme, "cannot load the CA certificates: " + ec.message());
    if (!c.tls_cert_file.empty()) {
      ctx->use_certificate_chain_file(c.tls_cert_file, ec);
      if (ec) bad(scheme, "cannot load the client certificate: " + ec.message());
      ctx->use_private_key_file(c.tls_key_file, asio::ssl::context::pem, ec);
      if (ec) bad(scheme, "cannot load the client key: " + ec.message());
    }
    ctx->set_verify_mode(c.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    o.tls = std::move(ctx);
    o.tls_name = c.tls_sni.empty() ? c.host : c.tls_sni;
    o.tls_verify = c.tls_verify;
  }
  return o;
}

}  // namespace dlock::detail::redis
