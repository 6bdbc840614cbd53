#include "redis/errors.hpp"

namespace dlock::detail::redis {
namespace {
bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

errc classify_server_error(std::string_view m) {
  if (starts_with(m, "WRONGPASS") || starts_with(m, "NOAUTH") || starts_with(m, "NOPERM") ||
      starts_with(m, "ERR AUTH") || starts_with(m, "ERR invalid password") ||
      starts_with(m, "ERR Client sent AUTH")) {
    return errc::auth_failed;
  }
  // The server cannot take writes now (replica, loading, out of memory, failover, cluster
  // down): the lock service is unavailable, the request itself was fine.
  if (starts_with(m, "READONLY") || starts_with(m, "LOADING") || starts_with(m, "OOM") ||
      starts_with(m, "MASTERDOWN") || starts_with(m, "TRYAGAIN") || starts_with(m, "CLUSTERDOWN") ||
      starts_with(m, "BUSY") || starts_with(m, "NOREPLICAS") || starts_with(m, "MISCONF")) {
    return errc::unavailable;
  }
  return errc::protocol_error;
}

Failure server_failure(std::string_view message) {
  // Server messages never echo credentials; cap their length anyway.
  return Failure{classify_server_error(message), std::string(message.substr(0, 200))};
}

void raise(std::string_view scheme, const std::string& key, std::string_view step,
           const Failure& failure) {
  throw Error(failure.code, std::string(scheme), key, std::string(step), failure.detail);
}

}  // namespace dlock::detail::redis
