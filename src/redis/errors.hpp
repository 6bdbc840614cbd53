// The one place where Redis failures become dlock errors.
#pragma once

#include <string>
#include <string_view>

#include "dlock/error.hpp"
#include "redis/pipeline.hpp"

namespace dlock::detail::redis {

/// The errc for a server error reply ("-WRONGPASS ...", "-NOPERM ...", "-READONLY ...").
errc classify_server_error(std::string_view message);

/// Throws `Error` for a server error reply.
[[noreturn]] void throw_server_error(std::string_view scheme, const std::string& key,
                                     const std::string& step, std::string_view message);

/// Throws `Error` for a request that got no reply.
[[noreturn]] void throw_failure(std::string_view scheme, const std::string& key,
                                const std::string& step, const Failure& failure);

}  // namespace dlock::detail::redis
