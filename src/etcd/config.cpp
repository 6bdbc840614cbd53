// etcd URLs and EtcdConfig -> a store. Schemes: etcd:// (FIFO mutex), etcd+txn:// (the seed's
// transaction lock), and their TLS forms etcds:// and etcd+txn+tls://.
#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/url.hpp"
#include "dlock/etcd.hpp"
#include "etcd/stores.hpp"

namespace dlock {
namespace detail::etcd {
namespace {

std::string scheme_of(const EtcdConfig& c, bool tls) {
  std::string s = c.mode == EtcdConfig::Mode::txn ? "etcd+txn" : "etcd";
  if (tls) s = c.mode == EtcdConfig::Mode::txn ? "etcd+txn+tls" : "etcds";
  return s;
}

bool uses_tls(const EtcdConfig& c) {
  return c.tls || !c.ca_file.empty() || !c.cert_file.empty() || !c.key_file.empty();
}

std::shared_ptr<EtcdBackend> make_backend(const EtcdConfig& c, const Context& ctx) {
  auto scheme = scheme_of(c, uses_tls(c));
  if (c.prefix.empty()) {
    throw Error(errc::invalid_argument, scheme, "", "open", "the key prefix must not be empty");
  }
  auto opened = Client::open(c, ctx);
  if (!opened.ok()) throw to_error(opened.failure, scheme, "", "open");
  auto client = std::move(opened.value);
  return c.mode == EtcdConfig::Mode::txn
             ? make_txn_backend(std::move(client), std::move(scheme), c.prefix)
             : make_fifo_backend(std::move(client), std::move(scheme), c.prefix);
}

EtcdConfig config_from_url(const std::string& text) {
  auto u = parse_url(text, 2379);
  check_query_keys(u, {"prefix", "connect_timeout", "dial_timeout", "request_timeout", "tls", "ca",
                       "cert", "key"});
  if (u.endpoints.empty()) {
    throw Error(errc::invalid_argument, u.scheme, "", "parse url", "no host");
  }
  if (!u.path.empty() && u.path != "/") {
    throw Error(errc::invalid_argument, u.scheme, "", "parse url",
                "etcd URLs take no path (use ?prefix=)");
  }
  EtcdConfig c;
  c.mode = (u.scheme == "etcd+txn" || u.scheme == "etcd+txn+tls") ? EtcdConfig::Mode::txn
                                                                  : EtcdConfig::Mode::fifo;
  for (auto& e : u.endpoints) {
    bool v6 = e.host.find(':') != std::string::npos;
    c.endpoints.push_back((v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port));
  }
  c.prefix = query_string(u, "prefix", c.prefix);
  // `dial_timeout` (etcd's own name) is accepted as an alias of `connect_timeout`.
  if (u.query.count("connect_timeout") && u.query.count("dial_timeout")) {
    throw Error(errc::invalid_argument, u.scheme, "", "parse url",
                "give connect_timeout or its alias dial_timeout, not both");
  }
  c.connect_timeout = query_duration(
      u, u.query.count("dial_timeout") ? "dial_timeout" : "connect_timeout", c.connect_timeout);
  c.request_timeout = query_duration(u, "request_timeout", c.request_timeout);
  c.tls = query_bool(u, "tls", u.scheme == "etcds" || u.scheme == "etcd+txn+tls");
  c.ca_file = query_string(u, "ca", "");
  c.cert_file = query_string(u, "cert", "");
  c.key_file = query_string(u, "key", "");
  c.user = u.user;
  c.password = u.password;
  if (c.connect_timeout.count() <= 0 || c.request_timeout.count() <= 0) {
    throw Error(errc::invalid_argument, u.scheme, "", "parse url", "timeouts must be > 0");
  }
  return c;
}

// A URL for display (never the password).
std::string display_url(const EtcdConfig& c) {
  std::string s = scheme_of(c, uses_tls(c)) + "://";
  if (!c.user.empty()) s += c.user + (c.password.empty() ? "" : ":***") + "@";
  for (std::size_t i = 0; i < c.endpoints.size(); ++i) s += (i ? "," : "") + c.endpoints[i];
  return s + "/?prefix=" + c.prefix;
}

}  // namespace
}  // namespace detail::etcd

namespace detail {

void add_etcd_schemes(SchemeTable& table) {
  for (const char* scheme : {"etcd", "etcd+txn", "etcds", "etcd+txn+tls"}) {
    table[scheme] = [](const std::string& url, const Context& ctx) -> std::shared_ptr<Backend> {
      return etcd::make_backend(etcd::config_from_url(url), ctx);
    };
  }
}

}  // namespace detail

Store open(const EtcdConfig& config, const Context& ctx) {
  auto backend = detail::etcd::make_backend(config, ctx);
  return detail::make_store(std::move(backend), detail::etcd::display_url(config));
}

}  // namespace dlock
