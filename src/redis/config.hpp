// Redis URLs to `RedisConfig`, and `RedisConfig` to connection options.
#pragma once

#include <string>

#include "dlock/redis.hpp"
#include "redis/connection.hpp"

namespace dlock::detail::redis {

/// Parses `redis://[user[:pass]@]host[:port][/db][?prefix=&connect_timeout=&command_timeout=
/// &min_replicas=&replica_timeout=]`, `rediss://...` (plus `ca=&cert=&key=&sni=&verify=`),
/// `redis+sentinel://[user[:pass]@]s1:p1,s2:p2/<master>[/db][?...&sentinel_user=
/// &sentinel_password=]`, `redis+cluster://[user[:pass]@]n1:p1,n2:p2[?...]` and
/// `rediss+cluster://...` (the cluster over TLS, with the same TLS keys as `rediss://`).
/// Throws `Error(errc::invalid_argument)`.
RedisConfig parse_redis_url(const std::string& url);

/// The config as a URL without the password (for `Store::url()` and errors).
std::string redacted_url(const RedisConfig& config);

/// Checks the config and builds connection options (loads TLS files). Throws
/// `Error(errc::invalid_argument)`.
ConnectionOptions connection_options(const RedisConfig& config);

}  // namespace dlock::detail::redis
