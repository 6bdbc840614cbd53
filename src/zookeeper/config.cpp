#include "zookeeper/config.hpp"

#include <cctype>

#include "core/url.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::zookeeper {
namespace {

using std::chrono::milliseconds;

[[noreturn]] void bad(const std::string& why) {
  throw Error(errc::invalid_argument, "zk", "", "config", why);
}

milliseconds duration_param(const ParsedUrl& u, const std::string& key, milliseconds fallback) {
  return query_duration_with_unit(u, key, fallback, "zk");
}

bool plain(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '@' ||
         c == '+' || c == '=' || c == ',';
}

std::string escape_all(const std::string& s, bool keep_plain) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (keep_plain && plain(c) && c != ':' && c != '@') {
      out += static_cast<char>(c);
    } else if (!keep_plain && plain(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string duration_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

ZooKeeperConfig parse_zookeeper_url(const std::string& url) {
  if (url.rfind("zks://", 0) == 0) {
    throw Error(errc::unsupported, "zk", "", "config",
                "zks:// (TLS) is not available: the ZooKeeper C client of this build "
                "(Debian's libzookeeper-mt) has no TLS support");
  }
  auto u = parse_url(url, 2181);
  if (u.scheme != "zk") bad("expected zk://");
  check_query_keys(u, {"session_timeout", "connect_timeout", "request_timeout"});
  if (u.endpoints.empty()) bad("expected at least one host[:port]");
  ZooKeeperConfig c;
  c.hosts.clear();
  for (auto& e : u.endpoints) {
    if (e.host.empty()) bad("empty host");
    if (!c.hosts.empty()) c.hosts += ',';
    c.hosts += e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
    c.hosts += ":" + std::to_string(e.port);
  }
  if (!u.path.empty() && u.path != "/") c.root = u.path;
  c.user = u.user;
  c.password = u.password;
  c.session_timeout = duration_param(u, "session_timeout", c.session_timeout);
  c.connect_timeout = duration_param(u, "connect_timeout", c.connect_timeout);
  c.request_timeout = duration_param(u, "request_timeout", c.request_timeout);
  validate(c);
  return c;
}

void validate(const ZooKeeperConfig& c) {
  if (c.hosts.empty()) bad("empty hosts");
  for (char ch : c.hosts) {
    if (ch == '/' || std::isspace(static_cast<unsigned char>(ch)) || ch == '\0') {
      bad("hosts must be host:port[,host:port...] (put the root in the root setting)");
    }
  }
  const std::string& r = c.root;
  if (r.size() < 2 || r[0] != '/' || r.back() == '/' || r.find("//") != std::string::npos) {
    bad("root must be an absolute path like /dlock, without a trailing '/', got '" +
        r.substr(0, 64) + "'");
  }
  if (r == "/zookeeper" || r.rfind("/zookeeper/", 0) == 0) bad("root must not be under /zookeeper");
  for (unsigned char ch : r) {
    if (ch < 0x20 || ch == 0x7f) bad("root contains a control byte");
  }
  for (std::size_t at = 0; at != std::string::npos; at = r.find('/', at + 1)) {
    const auto end = r.find('/', at + 1);
    const std::string part = r.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    if (part == "." || part == "..") bad("root must not contain '.' or '..'");
  }
  if (c.session_timeout.count() <= 0) bad("session_timeout must be positive");
  if (c.connect_timeout.count() <= 0) bad("connect_timeout must be positive");
  if (c.request_timeout.count() <= 0 || c.request_timeout > std::chrono::minutes(10)) {
    bad("request_timeout must be positive and at most 10 minutes");
  }
  if (c.user.empty() && !c.password.empty()) bad("a password needs a user");
  if (c.user.find(':') != std::string::npos) bad("the digest user must not contain ':'");
  for (const std::string* s : {&c.user, &c.password}) {
    if (s->find('\0') != std::string::npos) bad("a setting contains a NUL byte");
  }
}

std::string redacted_url(const ZooKeeperConfig& c) {
  std::string s = "zk://";
  if (!c.user.empty()) s += escape_all(c.user, true) + (c.password.empty() ? "@" : ":***@");
  s += c.hosts;
  if (c.root != "/dlock") s += c.root;
  std::string q;
  auto add = [&](const char* k, milliseconds v) {
    q += (q.empty() ? "?" : "&") + std::string(k) + "=" + duration_text(v);
  };
  const ZooKeeperConfig d;
  if (c.session_timeout != d.session_timeout) add("session_timeout", c.session_timeout);
  if (c.connect_timeout != d.connect_timeout) add("connect_timeout", c.connect_timeout);
  if (c.request_timeout != d.request_timeout) add("request_timeout", c.request_timeout);
  return s + q;
}

std::string encode_key(const std::string& key) {
  if (key == "." || key == "..") return key == "." ? "%2E" : "%2E%2E";
  return escape_all(key, false);
}

std::optional<std::string> decode_key(const std::string& name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      if (!plain(static_cast<unsigned char>(name[i]))) return std::nullopt;
      out += name[i];
      continue;
    }
    if (i + 2 >= name.size()) return std::nullopt;
    const int hi = hex_value(name[i + 1]), lo = hex_value(name[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (out.empty() || encode_key(out) != name) return std::nullopt;
  return out;
}

}  // namespace dlock::detail::zookeeper
