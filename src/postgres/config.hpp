// PostgreSQL URLs to `PostgresConfig`, and `PostgresConfig` to libpq connection parameters.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dlock/postgres.hpp"

namespace dlock::detail::postgres {

/// Parses `postgres://[user[:password]@]host[:port][/database][?table=&sslmode=&sslrootcert=
/// &sslcert=&sslkey=&connect_timeout=&request_timeout=&pool_size=&application_name=]` (and
/// `postgresql://`). Durations need a unit (`5s`, `500ms`): libpq reads a bare number as
/// seconds and dlock as milliseconds, so a bare number is refused. Throws
/// `Error(errc::invalid_argument)`.
PostgresConfig parse_postgres_url(const std::string& url);

/// Throws `Error(errc::invalid_argument)` for settings out of range (table name, timeouts,
/// pool size, sslmode).
void validate(const PostgresConfig& config);

/// The config as a URL without the password (for `Store::url()` and errors).
std::string redacted_url(const PostgresConfig& config);

/// libpq keyword/value pairs for `PQconnectStartParams` (the statement timeout, keepalives
/// and client encoding included).
std::vector<std::pair<std::string, std::string>> connection_params(const PostgresConfig& config);

}  // namespace dlock::detail::postgres
