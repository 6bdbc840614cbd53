// A command connection without an I/O thread: the calling threads do the socket I/O
// themselves (leader/followers), so a lone caller pays one system call to send and one wait
// in poll per round trip, as a plain blocking client does, and no thread hand-offs.
//
// One caller at a time is the leader: it connects when needed, reads replies and completes
// the requests of every caller; the others (followers) write their requests and sleep until
// theirs are answered or the leader leaves and hands the role to one of them. Requests queued
// while the connection is down are written in one batch once it is up. Plain TCP only; TLS
// connections stay on the Asio path.
#pragma once

#include <memory>

#include "redis/connection.hpp"

namespace dlock::detail::redis {

/// A `Connection` whose callers do its I/O (see the file comment).
std::shared_ptr<Connection> make_direct_connection(ConnectionOptions options);

}  // namespace dlock::detail::redis
