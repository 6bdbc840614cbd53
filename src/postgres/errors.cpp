#include "postgres/errors.hpp"

#include <string>

namespace dlock::detail::postgres {

errc classify_sqlstate(std::string_view s) {
  if (s.size() != 5) return errc::protocol_error;
  const std::string_view cls = s.substr(0, 2);
  if (cls == "28" || s == "42501") return errc::auth_failed;  // Authorization, privilege.
  if (s == "3D000") return errc::not_found;                   // No such database.
  // Connection trouble, shutdown, too many connections, out of resources, a standby that
  // cannot write, serialization failure or deadlock: the request was fine, the store is not.
  if (cls == "08" || cls == "53" || cls == "57" || cls == "40" || s == "25006" || s == "55P03" ||
      cls == "58") {
    return errc::unavailable;
  }
  if (cls == "22") return errc::invalid_argument;  // Data exception (bad UTF-8 key...).
  return errc::protocol_error;
}

errc classify_connect_failure(std::string_view m) {
  auto has = [&](std::string_view part) { return m.find(part) != std::string_view::npos; };
  if (has("password authentication failed") || has("authentication failed") ||
      has("no pg_hba.conf entry") || has("pg_hba.conf rejects") || has("no password supplied") ||
      has("password is required") || (has("role \"") && has("does not exist")) ||
      has("permission denied for database") || has("must be superuser") ||
      has("SCRAM authentication")) {
    return errc::auth_failed;
  }
  if (has("database \"") && has("does not exist")) return errc::not_found;
  return errc::unavailable;
}

std::string clean_message(std::string_view m) {
  std::string out;
  for (char c : m) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  for (std::string_view noise : {"FATAL:  ", "ERROR:  "}) {
    for (auto at = out.find(noise); at != std::string::npos; at = out.find(noise)) {
      out.erase(at, noise.size());
    }
  }
  if (out.size() > 300) out.resize(300);
  return out;
}

}  // namespace dlock::detail::postgres
