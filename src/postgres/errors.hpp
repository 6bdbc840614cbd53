// How PostgreSQL failures become dlock error codes, in one place.
#pragma once

#include <string_view>

#include "dlock/error.hpp"

namespace dlock::detail::postgres {

/// The dlock code of a statement's error by its SQLSTATE: authorization and privilege errors
/// are `auth_failed`, connection, shutdown, resource and serialization errors `unavailable`,
/// bad data (e.g. a key that is not valid UTF-8) `invalid_argument`, a missing database
/// `not_found`, anything else `protocol_error`.
errc classify_sqlstate(std::string_view sqlstate);

/// The dlock code of a failed connection attempt by libpq's message (libpq gives no SQLSTATE
/// for it): wrong password, unknown role or a `pg_hba.conf` refusal are `auth_failed`, a
/// missing database `not_found`, everything else (refused, unreachable, TLS) `unavailable`.
errc classify_connect_failure(std::string_view message);

/// libpq's message on one line, without its trailing newline and "FATAL:  " noise, at most
/// 300 bytes (messages never contain the password).
std::string clean_message(std::string_view message);

}  // namespace dlock::detail::postgres
