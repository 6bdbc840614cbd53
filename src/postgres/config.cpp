#include "postgres/config.hpp"

#include <cctype>

#include "core/url.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::postgres {
namespace {

using std::chrono::milliseconds;

[[noreturn]] void bad(const std::string& why) {
  throw Error(errc::invalid_argument, "postgres", "", "config", why);
}

// A duration query parameter; a bare number is refused (libpq means seconds, dlock ms).
milliseconds duration_param(const ParsedUrl& u, const std::string& key, milliseconds fallback) {
  return query_duration_with_unit(u, key, fallback, "postgres",
                                  "libpq reads a bare number as seconds, dlock as milliseconds");
}

bool valid_identifier(const std::string& s) {
  if (s.empty() || s.size() > 55) return false;
  if (!(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

// Percent-escapes what a URL component cannot hold as is.
std::string escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string duration_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

PostgresConfig parse_postgres_url(const std::string& url) {
  auto u = parse_url(url, 5432);
  if (u.scheme != "postgres" && u.scheme != "postgresql") bad("expected postgres://");
  check_query_keys(u, {"table", "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout",
                       "request_timeout", "pool_size", "application_name"});
  if (u.endpoints.size() != 1) bad("expected exactly one host[:port]");
  PostgresConfig c;
  c.host = u.endpoints[0].host;
  c.port = u.endpoints[0].port;
  c.user = u.user;
  c.password = u.password;
  if (!u.path.empty() && u.path != "/") {
    c.database = u.path.substr(1);
    if (c.database.find('/') != std::string::npos) bad("expected /database, one path segment");
  }
  c.table = query_string(u, "table", c.table);
  c.sslmode = query_string(u, "sslmode", "");
  c.ssl_ca_file = query_string(u, "sslrootcert", "");
  c.ssl_cert_file = query_string(u, "sslcert", "");
  c.ssl_key_file = query_string(u, "sslkey", "");
  c.connect_timeout = duration_param(u, "connect_timeout", c.connect_timeout);
  c.request_timeout = duration_param(u, "request_timeout", c.request_timeout);
  c.pool_size = static_cast<int>(query_int(u, "pool_size", c.pool_size, 1, 1000));
  c.application_name = query_string(u, "application_name", c.application_name);
  validate(c);
  return c;
}

void validate(const PostgresConfig& c) {
  if (c.host.empty()) bad("empty host");
  if (c.port == 0) bad("port 0");
  auto dot = c.table.find('.');
  const bool table_ok = dot == std::string::npos ? valid_identifier(c.table)
                                                 : valid_identifier(c.table.substr(0, dot)) &&
                                                       valid_identifier(c.table.substr(dot + 1));
  if (!table_ok) {
    bad("table must be name or schema.name of lower-case letters, digits and '_' (at most 55 "
        "characters each), got '" +
        c.table.substr(0, 64) + "'");
  }
  if (c.connect_timeout.count() <= 0) bad("connect_timeout must be positive");
  if (c.request_timeout.count() <= 0 || c.request_timeout > std::chrono::minutes(10)) {
    bad("request_timeout must be positive and at most 10 minutes");
  }
  if (c.pool_size < 1 || c.pool_size > 1000) bad("pool_size must be in [1, 1000]");
  static const char* modes[] = {"",        "disable",   "allow",      "prefer",
                                "require", "verify-ca", "verify-full"};
  bool mode_ok = false;
  for (auto* m : modes) mode_ok = mode_ok || c.sslmode == m;
  if (!mode_ok) {
    bad("sslmode must be disable, allow, prefer, require, verify-ca or verify-full");
  }
  for (const std::string* s :
       {&c.host, &c.user, &c.password, &c.database, &c.sslmode, &c.ssl_ca_file, &c.ssl_cert_file,
        &c.ssl_key_file, &c.application_name}) {
    if (s->find('\0') != std::string::npos) bad("a setting contains a NUL byte");
  }
}

std::string redacted_url(const PostgresConfig& c) {
  std::string s = "postgres://";
  if (!c.user.empty() || !c.password.empty()) {
    s += escape(c.user);
    if (!c.password.empty()) s += ":***";
    s += '@';
  }
  s += c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
  s += ":" + std::to_string(c.port);
  if (!c.database.empty()) s += "/" + escape(c.database);
  std::string q;
  auto add = [&](const char* k, const std::string& v) {
    q += (q.empty() ? "?" : "&") + std::string(k) + "=" + escape(v);
  };
  const PostgresConfig d;
  if (c.table != d.table) add("table", c.table);
  if (!c.sslmode.empty()) add("sslmode", c.sslmode);
  if (!c.ssl_ca_file.empty()) add("sslrootcert", c.ssl_ca_file);
  if (!c.ssl_cert_file.empty()) add("sslcert", c.ssl_cert_file);
  if (!c.ssl_key_file.empty()) add("sslkey", c.ssl_key_file);
  if (c.connect_timeout != d.connect_timeout)
    add("connect_timeout", duration_text(c.connect_timeout));
  if (c.request_timeout != d.request_timeout)
    add("request_timeout", duration_text(c.request_timeout));
  if (c.pool_size != d.pool_size) add("pool_size", std::to_string(c.pool_size));
  if (c.application_name != d.application_name) add("application_name", c.application_name);
  return s + q;
}

std::vector<std::pair<std::string, std::string>> connection_params(const PostgresConfig& c) {
  std::vector<std::pair<std::string, std::string>> p;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) p.emplace_back(k, v);
  };
  add("host", c.host);
  add("port", std::to_string(c.port));
  add("user", c.user);
  add("password", c.password);
  add("dbname", c.database);
  add("sslmode", c.sslmode);
  add("sslrootcert", c.ssl_ca_file);
  add("sslcert", c.ssl_cert_file);
  add("sslkey", c.ssl_key_file);
  add("application_name", c.application_name);
  add("client_encoding", "UTF8");
  // The server ends a statement that outlives our own bound on it, so an abandoned one does
  // not hold row locks behind our back. Generic plans: every statement looks rows up by
  // name, and a custom plan for a batch of renewals (an array of known size) would hash-join
  // the whole table instead (30x slower at 50,000 rows); planning once also saves CPU.
  add("options", "-c statement_timeout=" + std::to_string(c.request_timeout.count()) +
                     " -c plan_cache_mode=force_generic_plan");
  // A dead peer is found by the kernel too (idle listener connections, lost replies).
  add("keepalives", "1");
  add("keepalives_idle", "10");
  add("keepalives_interval", "5");
  add("keepalives_count", "3");
  add("tcp_user_timeout", std::to_string(c.request_timeout.count()));
  return p;
}

}  // namespace dlock::detail::postgres
