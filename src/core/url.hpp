// Store URLs: scheme://[user[:password]@]host[:port][,host[:port]...][/path][?k=v&...].
// One parser for every store, so every store rejects bad URLs the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace dlock::detail {

struct Endpoint {
  std::string host;  ///< Host name or address (IPv6 without brackets).
  std::uint16_t port = 0;
};

struct ParsedUrl {
  std::string scheme;
  std::string user;
  std::string password;
  bool has_password = false;
  std::vector<Endpoint> endpoints;           ///< Empty when the authority is empty (file:///dir).
  std::string authority;                     ///< Raw authority text (e.g. a memory store's name).
  std::string path;                          ///< Decoded path including its leading '/', or empty.
  std::map<std::string, std::string> query;  ///< Decoded query parameters.

  /// The URL with the password replaced by "***" (safe for logs and errors).
  std::string redacted() const;
};

/// Parses `url`. Hosts without a port get `default_port` (0: a port is not expected, and the
/// authority is kept as-is in `authority`). Throws `Error(errc::invalid_argument)` for a
/// missing scheme, bad port, bad percent-escape or duplicate query parameter.
ParsedUrl parse_url(std::string_view url, std::uint16_t default_port);

/// Throws `invalid_argument` if `url.query` has a key not in `known`.
void check_query_keys(const ParsedUrl& url, std::initializer_list<std::string_view> known);

/// Parses "250ms", "10s", "2m", "1h", "1500us" (a bare number means milliseconds). Throws
/// `invalid_argument` naming `what` on bad text or a negative value.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what);

/// Query helpers: absent -> `fallback`; malformed -> `invalid_argument`.
std::chrono::milliseconds query_duration(const ParsedUrl& url, const std::string& key,
                                         std::chrono::milliseconds fallback);
/// As `query_duration`, but a bare number is refused (`invalid_argument` from `scheme`, step
/// "config", with `note` appended): for stores whose own clients read a bare number in another
/// unit than dlock's milliseconds.
std::chrono::milliseconds query_duration_with_unit(const ParsedUrl& url, const std::string& key,
                                                   std::chrono::milliseconds fallback,
                                                   std::string_view scheme,
                                                   std::string_view note = {});
bool query_bool(const ParsedUrl& url, const std::string& key, bool fallback);
long long query_int(const ParsedUrl& url, const std::string& key, long long fallback, long long min,
                    long long max);
std::string query_string(const ParsedUrl& url, const std::string& key, const std::string& fallback);

}  // namespace dlock::detail
