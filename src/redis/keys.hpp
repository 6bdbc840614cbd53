// The layout of one lock in Redis: the names of its keys and channels (scripts.hpp says what
// each holds), and the reading of what the scripts store there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.hpp"
#include "redis/resp.hpp"

namespace dlock::detail::redis {

/// The names of the keys of lock `name` under `prefix` (K = `<prefix><name>`). `wake` is the
/// prefix of the waiters' channels (one per store object); `revoked` is the channel on which
/// a force release names the token it deleted.
struct LockKeys {
  std::string lock, fence, meta, queue, qexp, qdata, wake, revoked;
  LockKeys(const std::string& prefix, const std::string& name);
  /// The KEYS of the queue-aware scripts, in their order.
  std::vector<std::string_view> all() const { return {lock, fence, meta, queue, qexp, qdata}; }
};

/// The number at the start of `s` (0 if none).
std::uint64_t parse_u64(std::string_view s);

/// `s` with the glob characters of SCAN MATCH escaped.
std::string glob_escape(std::string_view s);

/// Whether `key` (found by SCAN) is a lock's companion ({K}:fence, {K}:meta) and no lock.
bool is_companion(std::string_view key);

/// The inspect script's reply ({held (0/1), token, pttl, meta, live waiters}) as an
/// inspection of lock `key`; nullopt when the reply has another shape.
std::optional<Backend::Inspection> parse_inspection(const std::string& key, const RespValue& r);

}  // namespace dlock::detail::redis
