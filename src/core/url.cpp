#include "core/url.hpp"

#include <cctype>
#include <charconv>

#include "dlock/error.hpp"

namespace dlock::detail {
namespace {

[[noreturn]] void bad(std::string_view scheme, const std::string& why) {
  throw Error(errc::invalid_argument, std::string(scheme), "", "parse url", why);
}

std::string decode(std::string_view s, std::string_view scheme) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int v = 0;
    if (i + 2 >= s.size() ||
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr != s.data() + i + 3) {
      bad(scheme, "bad percent-escape");
    }
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::uint16_t parse_port(std::string_view p, std::string_view scheme) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) {
    bad(scheme, "bad port '" + std::string(p.substr(0, 16)) + "'");
  }
  return static_cast<std::uint16_t>(v);
}

Endpoint parse_endpoint(std::string_view hp, std::uint16_t default_port, std::string_view scheme) {
  Endpoint e;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos) bad(scheme, "unclosed '[' in host");
    e.host = std::string(hp.substr(1, close - 1));
    auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') bad(scheme, "junk after ']' in host");
      port = rest.substr(1);
      if (port.empty()) bad(scheme, "empty port");
    }
  } else {
    auto colon = hp.rfind(':');
    if (colon != std::string_view::npos) {
      e.host = std::string(hp.substr(0, colon));
      port = hp.substr(colon + 1);
      if (port.empty()) bad(scheme, "empty port");
    } else {
      e.host = std::string(hp);
    }
  }
  if (e.host.empty()) bad(scheme, "empty host");
  e.port = port.empty() ? default_port : parse_port(port, scheme);
  return e;
}

}  // namespace

std::string ParsedUrl::redacted() const {
  std::string s = scheme + "://";
  if (!user.empty() || has_password) {
    s += user;
    if (has_password) s += ":***";
    s += '@';
  }
  s += authority + path;
  if (!query.empty()) {
    char sep = '?';
    for (auto& [k, v] : query) {
      bool secret = k == "password" || k == "pass";
      s += sep + k + '=' + (secret ? "***" : v);
      sep = '&';
    }
  }
  return s;
}

ParsedUrl parse_url(std::string_view url, std::uint16_t default_port) {
  ParsedUrl u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    bad("", "expected scheme://..., got a string without a scheme");
  }
  u.scheme = std::string(url.substr(0, sep));
  for (char c : u.scheme) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) {
      bad("", "bad character in scheme");
    }
  }
  std::string_view rest = url.substr(sep + 3);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    u.path = decode(rest.substr(slash), u.scheme);
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    u.user = decode(userinfo.substr(0, colon), u.scheme);
    if (colon != std::string_view::npos) {
      u.password = decode(userinfo.substr(colon + 1), u.scheme);
      u.has_password = true;
    }
  }
  u.authority = std::string(authority);
  if (default_port != 0 && !authority.empty()) {
    std::size_t start = 0;
    while (start <= authority.size()) {
      auto comma = authority.find(',', start);
      auto part = authority.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      u.endpoints.push_back(parse_endpoint(part, default_port, u.scheme));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    auto kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    std::string k = decode(kv.substr(0, eq), u.scheme);
    std::string v = eq == std::string_view::npos ? "" : decode(kv.substr(eq + 1), u.scheme);
    if (k.empty()) bad(u.scheme, "empty query parameter name");
    if (!u.query.emplace(k, v).second) bad(u.scheme, "duplicate query parameter '" + k + "'");
  }
  return u;
}

void check_query_keys(const ParsedUrl& url, std::initializer_list<std::string_view> known) {
  for (auto& [k, v] : url.query) {
    bool ok = false;
    for (auto n : known) ok = ok || n == k;
    if (!ok) bad(url.scheme, "unknown query parameter '" + k + "'");
  }
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what) {
  auto fail = [&]() -> std::chrono::milliseconds {
    throw Error(errc::invalid_argument, "", "", "parse duration",
                std::string(what) + ": '" + std::string(text.substr(0, 32)) +
                    "' is not a duration like 500ms, 10s, 2m, 1h");
  };
  if (text.empty()) return fail();
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || !(v >= 0 && v <= 1e12)) return fail();  // Also rejects "nan".
  std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  double ms;
  if (unit.empty() || unit == "ms") {
    ms = v;
  } else if (unit == "us") {
    ms = v / 1000.0;
  } else if (unit == "s") {
    ms = v * 1000.0;
  } else if (unit == "m") {
    ms = v * 60'000.0;
  } else if (unit == "h") {
    ms = v * 3'600'000.0;
  } else {
    return fail();
  }
  return std::chrono::milliseconds(static_cast<long long>(ms + 0.5));
}

std::chrono::milliseconds query_duration(const ParsedUrl& url, const std::string& key,
                                         std::chrono::milliseconds fallback) {
  auto it = url.query.find(key);
  return it == url.query.end() ? fallback : parse_duration(it->second, key);
}

std::chrono::milliseconds query_duration_with_unit(const ParsedUrl& url, const std::string& key,
                                                   std::chrono::milliseconds fallback,
                                                   std::string_view scheme, std::string_view note) {
  auto it = url.query.find(key);
  if (it == url.query.end()) return fallback;
  const std::string& v = it->second;
  if (!v.empty() && std::isdigit(static_cast<unsigned char>(v.back()))) {
    throw Error(errc::invalid_argument, std::string(scheme), "", "config",
                "query parameter '" + key + "' needs a unit, e.g. 5s or 500ms" +
                    (note.empty() ? std::string() : " (" + std::string(note) + ")"));
  }
  return parse_duration(v, key);
}

bool query_bool(const ParsedUrl& url, const std::string& key, bool fallback) {
  auto it = url.query.find(key);
  if (it == url.query.end()) return fallback;
  const auto& v = it->second;
  if (v == "1" || v == "true" || v == "yes" || v == "on" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  bad(url.scheme, "query parameter '" + key + "' must be true or false");
}

long long query_int(const ParsedUrl& url, const std::string& key, long long fallback, long long min,
                    long long max) {
  auto it = url.query.find(key);
  if (it == url.query.end()) return fallback;
  long long v = 0;
  const auto& s = it->second;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < min || v > max) {
    bad(url.scheme, "query parameter '" + key + "' must be an integer in [" + std::to_string(min) +
                        ", " + std::to_string(max) + "]");
  }
  return v;
}

std::string query_string(const ParsedUrl& url, const std::string& key,
                         const std::string& fallback) {
  auto it = url.query.find(key);
  return it == url.query.end() ? fallback : it->second;
}

}  // namespace dlock::detail
