// The ZooKeeper store (`zk://`): exclusive locks as ephemeral sequential nodes, with the
// layout of Curator's InterProcessMutex and kazoo's Lock. See docs/stores/zookeeper.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/backend.hpp"
#include "dlock/zookeeper.hpp"

namespace dlock::detail::zookeeper {

/// Connects (one session), adds the credentials and creates the root. Throws `Error`.
std::shared_ptr<Backend> make_zookeeper_backend(const ZooKeeperConfig& config, const Context& ctx);

/// For tests: the id and password of a ZooKeeper backend's current session ({0, ""} for
/// another backend), so that a test can end the session from another client.
std::pair<std::int64_t, std::string> session_credentials(Backend& backend);

}  // namespace dlock::detail::zookeeper
