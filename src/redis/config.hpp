// Redis URLs to `RedisConfig`, and `RedisConfig` to connection options.
#pragma once

#include <string>

#include "dlock/redis.hpp"
#include "redis/connection_options.hpp"

namespace dlock::detail::redis {

/// Parses `redis://[user[:pass]@]host[:port][/db][?prefix=&connect_timeout=&request_timeout=
/// &min_replicas=&replica_timeout=]`, `rediss://...` (plus `ca_file=&cert_file=&key_file=
/// &sni=&verify=`), where `command_timeout`, `ca`, `cert` and `key` are accepted as aliases,
/// `redis+sentinel://[user[:pass]@]s1:p1,s2:p2/<master>[/db][?...&sentinel_user=
/// &sentinel_password=]`, `rediss+sentinel://...` (TLS to the sentinels and the master, with
/// the TLS keys of `rediss://`), `redis+cluster://[user[:pass]@]n1:p1,n2:p2[?...]` and
/// `rediss+cluster://...` (the cluster over TLS, with the same TLS keys).
/// Throws `Error(errc::invalid_argument)`.
RedisConfig parse_redis_url(const std::string& url);

/// The URL scheme that `config` means ("redis", "rediss+sentinel", "redis+cluster"...).
std::string scheme_of(const RedisConfig& config);

/// The config as a URL without the password (for `Store::url()` and errors).
std::string redacted_url(const RedisConfig& config);

/// Checks the config and builds connection options (loads TLS files). Throws
/// `Error(errc::invalid_argument)`.
ConnectionOptions connection_options(const RedisConfig& config);

}  // namespace dlock::detail::redis
