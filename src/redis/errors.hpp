// The one place where Redis failures become dlock errors: server error replies are classified
// into `errc` here, and `raise` is the one function that names the store, the key and the
// step (the connection layer below knows none of them).
#pragma once

#include <string>
#include <string_view>

#include "dlock/error.hpp"
#include "redis/result.hpp"

namespace dlock::detail::redis {

/// The errc for a server error reply ("-WRONGPASS ...", "-NOPERM ...", "-READONLY ...").
errc classify_server_error(std::string_view message);

/// The failure that a server error reply means (classified, the message capped in length).
Failure server_failure(std::string_view message);

/// Throws the `Error` for `failure`, naming the store's `scheme`, the lock `key` (may be
/// empty) and the `step` ("acquire", "renew", "connect"...).
[[noreturn]] void raise(std::string_view scheme, const std::string& key, std::string_view step,
                        const Failure& failure);

}  // namespace dlock::detail::redis
