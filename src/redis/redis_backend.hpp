// The Redis store: the lock protocol of scripts.hpp over one multiplexed connection, plus one
// subscriber connection for release notifications.
#pragma once

#include <memory>

#include "core/backend.hpp"
#include "dlock/redis.hpp"

namespace dlock::detail::redis {

/// Connects (one PING, bounded by `ctx` and the connect timeout) and returns the store.
/// Throws `Error`: invalid_argument, unavailable, auth_failed, timeout.
std::shared_ptr<Backend> make_redis_backend(const RedisConfig& config, const Context& ctx);

}  // namespace dlock::detail::redis
