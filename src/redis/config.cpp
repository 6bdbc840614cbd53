#include "redis/config.hpp"

#include <asio/ssl.hpp>

#include "core/url.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::redis {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void bad(const std::string& scheme, const std::string& why) {
  throw Error(errc::invalid_argument, scheme, "", "config", why);
}

// The query key that sets a field: its name, or its older alias (at most one of them).
std::string spelled(const ParsedUrl& u, const std::string& name, const std::string& alias) {
  const bool has_name = u.query.count(name) > 0, has_alias = u.query.count(alias) > 0;
  if (has_name && has_alias) bad(u.scheme, "give '" + name + "' or its alias '" + alias + "'");
  return has_alias ? alias : name;
}

// The query keys every scheme takes.
void common_query(const ParsedUrl& u, RedisConfig& c) {
  c.prefix = query_string(u, "prefix", c.prefix);
  c.connect_timeout = query_duration(u, "connect_timeout", c.connect_timeout);
  c.request_timeout =
      query_duration(u, spelled(u, "request_timeout", "command_timeout"), c.request_timeout);
  c.min_replicas = static_cast<int>(query_int(u, "min_replicas", 0, 0, 1000));
  c.replica_timeout = query_duration(u, "replica_timeout", c.replica_timeout);
}

// Rejects unknown query keys of rediss:// / redis:// (and their +cluster forms): the common
// keys, plus the TLS files and checks when `tls`.
void check_direct_query_keys(const ParsedUrl& u, bool tls) {
  if (tls) {
    check_query_keys(u, {"prefix", "connect_timeout", "request_timeout", "command_timeout",
                         "min_replicas", "replica_timeout", "ca_file", "ca", "cert_file", "cert",
                         "key_file", "key", "sni", "verify"});
  } else {
    check_query_keys(u, {"prefix", "connect_timeout", "request_timeout", "command_timeout",
                         "min_replicas", "replica_timeout"});
  }
}

// The TLS query keys (rediss:// and rediss+cluster://).
void tls_query(const ParsedUrl& u, RedisConfig& c) {
  c.tls = true;
  c.ca_file = query_string(u, spelled(u, "ca_file", "ca"), "");
  c.cert_file = query_string(u, spelled(u, "cert_file", "cert"), "");
  c.key_file = query_string(u, spelled(u, "key_file", "key"), "");
  c.tls_sni = query_string(u, "sni", "");
  c.tls_verify = query_bool(u, "verify", true);
}

int parse_db(const std::string& scheme, const std::string& text) {
  if (text.empty() || text.size() > 5 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    bad(scheme, "the database must be a number, e.g. /2");
  }
  return std::stoi(text);
}

// redis+sentinel://[user[:pass]@]s1:p1,s2:p2/<master>[/db][?...&sentinel_user=&sentinel_password=]
// and rediss+sentinel:// (TLS to the sentinels and to the master, plus the TLS keys).
RedisConfig parse_sentinel_url(const std::string& url) {
  auto u = parse_url(url, 26379);
  const bool tls = u.scheme == "rediss+sentinel";
  if (tls) {
    check_query_keys(u, {"prefix", "connect_timeout", "request_timeout", "command_timeout",
                         "min_replicas", "replica_timeout", "sentinel_user", "sentinel_password",
                         "ca_file", "ca", "cert_file", "cert", "key_file", "key", "sni", "verify"});
  } else {
    check_query_keys(u, {"prefix", "connect_timeout", "request_timeout", "command_timeout",
                         "min_replicas", "replica_timeout", "sentinel_user", "sentinel_password"});
  }
  if (u.endpoints.empty()) bad(u.scheme, "expected sentinels host:port,host:port");
  RedisConfig c;
  for (auto& e : u.endpoints) c.sentinels.push_back(RedisEndpoint{e.host, e.port});
  c.user = u.user;
  c.password = u.password;
  if (!u.has_password && !u.user.empty()) {
    c.password = u.user;
    c.user.clear();
  }
  std::string path = u.path.empty() ? "" : u.path.substr(1);
  auto slash = path.find('/');
  c.sentinel_master = path.substr(0, slash);
  if (c.sentinel_master.empty()) bad(u.scheme, "expected the master's name: /<master>");
  if (slash != std::string::npos) c.db = parse_db(u.scheme, path.substr(slash + 1));
  common_query(u, c);
  c.sentinel_user = query_string(u, "sentinel_user", "");
  c.sentinel_password = query_string(u, "sentinel_password", "");
  if (tls) tls_query(u, c);
  return c;
}

// redis+cluster://[user[:pass]@]n1:p1,n2:p2[?...], and rediss+cluster:// (plus the TLS keys).
RedisConfig parse_cluster_url(const std::string& url) {
  auto u = parse_url(url, 6379);
  const bool tls = u.scheme == "rediss+cluster";
  check_direct_query_keys(u, tls);
  if (u.endpoints.empty()) bad(u.scheme, "expected cluster nodes host:port,host:port");
  if (!u.path.empty() && u.path != "/") bad(u.scheme, "a cluster has no databases: no path");
  RedisConfig c;
  for (auto& e : u.endpoints) c.cluster_nodes.push_back(RedisEndpoint{e.host, e.port});
  c.user = u.user;
  c.password = u.password;
  if (!u.has_password && !u.user.empty()) {
    c.password = u.user;
    c.user.clear();
  }
  common_query(u, c);
  if (tls) tls_query(u, c);
  return c;
}

}  // namespace

std::string scheme_of(const RedisConfig& c) {
  const std::string s = c.tls ? "rediss" : "redis";
  if (!c.cluster_nodes.empty()) return s + "+cluster";
  if (!c.sentinels.empty()) return s + "+sentinel";
  return s;
}

RedisConfig parse_redis_url(const std::string& url) {
  if (url.starts_with("redis+sentinel://") || url.starts_with("rediss+sentinel://")) {
    return parse_sentinel_url(url);
  }
  if (url.starts_with("redis+cluster://") || url.starts_with("rediss+cluster://")) {
    return parse_cluster_url(url);
  }
  auto u = parse_url(url, 6379);
  const bool tls = u.scheme == "rediss";
  check_direct_query_keys(u, tls);
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
  if (!u.path.empty() && u.path != "/") c.db = parse_db(u.scheme, u.path.substr(1));
  common_query(u, c);
  if (tls) tls_query(u, c);
  return c;
}

std::string redacted_url(const RedisConfig& c) {
  auto host = [](const std::string& h) {
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
  };
  auto creds = [&] {
    if (!c.user.empty()) return c.user + (c.password.empty() ? "@" : ":***@");
    return std::string(c.password.empty() ? "" : ":***@");
  };
  if (!c.cluster_nodes.empty()) {
    std::string s = (c.tls ? "rediss+cluster://" : "redis+cluster://") + creds();
    for (std::size_t i = 0; i < c.cluster_nodes.size(); ++i) {
      // Appended piecewise: `"," + std::string&&` trips GCC 12's -Wrestrict false positive.
      if (i) s += ',';
      s += host(c.cluster_nodes[i].host);
      s += ':';
      s += std::to_string(c.cluster_nodes[i].port);
    }
    return s;
  }
  if (!c.sentinels.empty()) {
    std::string s = c.tls ? "rediss+sentinel://" : "redis+sentinel://";
    if (!c.user.empty()) s += c.user + (c.password.empty() ? "@" : ":***@");
    if (c.user.empty() && !c.password.empty()) s += ":***@";
    for (std::size_t i = 0; i < c.sentinels.size(); ++i) {
      if (i) s += ',';
      s += host(c.sentinels[i].host);
      s += ':';
      s += std::to_string(c.sentinels[i].port);
    }
    s += "/" + c.sentinel_master;
    if (c.db != 0) s += "/" + std::to_string(c.db);
    return s;
  }
  std::string s = c.tls ? "rediss://" : "redis://";
  if (!c.user.empty()) s += c.user + (c.password.empty() ? "@" : ":***@");
  if (c.user.empty() && !c.password.empty()) s += ":***@";
  s += host(c.host);
  s += ":" + std::to_string(c.port);
  if (c.db != 0) s += "/" + std::to_string(c.db);
  return s;
}

ConnectionOptions connection_options(const RedisConfig& c) {
  const std::string scheme = scheme_of(c);
  if (!c.cluster_nodes.empty()) {
    if (!c.sentinels.empty()) bad(scheme, "Cluster and Sentinel exclude each other");
    if (c.db != 0) bad(scheme, "a cluster has only database 0");
    for (auto& n : c.cluster_nodes) {
      if (n.host.empty() || n.port == 0) bad(scheme, "bad cluster node address");
    }
  }
  if (c.sentinels.empty() && c.cluster_nodes.empty() && c.host.empty()) {
    bad(scheme, "empty host");
  }
  if (!c.sentinels.empty() && c.sentinel_master.empty()) bad(scheme, "no sentinel_master");
  if (c.port == 0) bad(scheme, "port 0");
  if (c.db < 0) bad(scheme, "negative database number");
  if (c.connect_timeout.count() <= 0) bad(scheme, "connect_timeout must be > 0");
  if (c.request_timeout.count() <= 0) bad(scheme, "request_timeout must be > 0");
  if (c.min_replicas < 0) bad(scheme, "min_replicas must be >= 0");
  if (c.min_replicas > 0 && c.replica_timeout.count() <= 0) {
    bad(scheme, "replica_timeout must be > 0");
  }
  if (!c.prefix.empty() && c.prefix.front() == '{') {
    bad(scheme, "the prefix must not start with '{' (companion keys do)");
  }
  if (c.cert_file.empty() != c.key_file.empty()) {
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
  // A grant's WAIT holds up the shared connection for up to replica_timeout: allow for it.
  o.request_timeout = c.request_timeout + (c.min_replicas > 0 ? c.replica_timeout : 0ms);
  if (!c.sentinels.empty()) {
    std::vector<Address> sentinels;
    for (auto& e : c.sentinels) {
      if (e.host.empty() || e.port == 0) bad(scheme, "bad sentinel address");
      sentinels.push_back({e.host, e.port});
    }
    o.sentinels = std::make_shared<Sentinels>(std::move(sentinels), c.sentinel_master,
                                              c.sentinel_user, c.sentinel_password);
  }
  if (c.tls) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    std::error_code ec;
    if (c.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(c.ca_file, ec);
    }
    if (ec) bad(scheme, "cannot load the CA certificates: " + ec.message());
    if (!c.cert_file.empty()) {
      ctx->use_certificate_chain_file(c.cert_file, ec);
      if (ec) bad(scheme, "cannot load the client certificate: " + ec.message());
      ctx->use_private_key_file(c.key_file, asio::ssl::context::pem, ec);
      if (ec) bad(scheme, "cannot load the client key: " + ec.message());
    }
    ctx->set_verify_mode(c.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    o.tls = std::move(ctx);
    // A cluster's nodes are reached at the addresses in its slot map, a Sentinel group's
    // master and sentinels at the addresses the sentinels and the URL give (usually IPs),
    // each verified under its own address: `host` is not used then, and `sni` (if set) names
    // every node.
    const bool one_node = c.cluster_nodes.empty() && c.sentinels.empty();
    o.tls_name = !c.tls_sni.empty() ? c.tls_sni : one_node ? c.host : "";
    o.tls_verify = c.tls_verify;
  }
  return o;
}

}  // namespace dlock::detail::redis
