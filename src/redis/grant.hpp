// One grant of the Redis store: what core hands back to release and extend it.
#pragma once

#include <string>

#include "core/backend.hpp"
#include "redis/keys.hpp"
#include "redis/revocations.hpp"

namespace dlock::detail::redis {

/// The lock's key names and the token that the lock key holds while the grant is ours.
struct RedisGrant final : GrantState {
  RedisGrant(std::string k, LockKeys n, std::string t)
      : key(std::move(k)), keys(std::move(n)), token(std::move(t)) {}
  const std::string key;  ///< The user's key (no prefix).
  const LockKeys keys;
  const std::string token;
  /// Listens for a force release of this grant; destroyed (unregistered) first.
  Revocations::Ticket revocation{};
};

}  // namespace dlock::detail::redis
