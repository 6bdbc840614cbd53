// ZooKeeper URLs to `ZooKeeperConfig`, settings checks, and how keys become node names.
#pragma once

#include <optional>
#include <string>

#include "dlock/zookeeper.hpp"

namespace dlock::detail::zookeeper {

/// Parses `zk://[user:password@]host:port[,host:port...][/root][?session_timeout=&
/// connect_timeout=&request_timeout=]` (durations with a unit, e.g. `10s`; a host without a
/// port gets 2181). `zks://` is refused with `errc::unsupported` (Debian's C client has no
/// TLS). Throws `Error(errc::invalid_argument)` for anything malformed.
ZooKeeperConfig parse_zookeeper_url(const std::string& url);

/// Throws `Error(errc::invalid_argument)` for settings out of range (empty hosts, a root that
/// is not an absolute path, timeouts, a password without a user).
void validate(const ZooKeeperConfig& config);

/// The config as a URL without the password (for `Store::url()` and errors).
std::string redacted_url(const ZooKeeperConfig& config);

/// A key as one node name: bytes other than letters, digits and `-_.~:@+=,` become `%XX`
/// (so '/' and non-ASCII bytes never reach a path), and the names "." and ".." are escaped.
std::string encode_key(const std::string& key);

/// The key of a node name made by `encode_key`; empty for a name it cannot have made.
std::optional<std::string> decode_key(const std::string& name);

}  // namespace dlock::detail::zookeeper
