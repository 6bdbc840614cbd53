// fork() safety. A child process inherits dlock's objects but none of its threads (the
// renewal scheduler, the stores' I/O threads), so it must not use them: the grants stay the
// parent's. Objects remember the pid that created them and refuse to act elsewhere:
// calls throw `errc::unsupported`, releases and destructors do nothing, and backends are
// left undestroyed (destroying them would join threads that do not exist in the child).
#pragma once

#include <unistd.h>

namespace dlock::detail {

/// Whether the calling process is not `owner` (a child forked after `owner` made the object).
inline bool forked_away(pid_t owner) noexcept { return ::getpid() != owner; }

}  // namespace dlock::detail
