// fork() safety. A child process inherits dlock's objects but none of its threads (the
// renewal scheduler, the stores' I/O threads), so it must not use them: the grants stay the
// parent's. Objects remember the pid that created them and refuse to act elsewhere:
// calls throw `errc::unsupported`, releases and destructors do nothing, and backends are
// left undestroyed (destroying them would join threads that do not exist in the child).
#pragma once

#include <pthread.h>
#include <unistd.h>

#include <atomic>

namespace dlock::detail {

namespace fork_detail {
inline std::atomic<pid_t> cached_pid{0};
inline void after_fork_in_child() noexcept { cached_pid.store(::getpid()); }
}  // namespace fork_detail

/// This process's id without a system call per use (glibc does not cache getpid): kept by a
/// pthread_atfork handler, which fork() runs in the child.
inline pid_t current_pid() noexcept {
  pid_t pid = fork_detail::cached_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const bool registered =
      ::pthread_atfork(nullptr, nullptr, &fork_detail::after_fork_in_child) == 0;
  pid = ::getpid();
  if (registered) fork_detail::cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

/// Whether the calling process is not `owner` (a child forked after `owner` made the object).
inline bool forked_away(pid_t owner) noexcept { return current_pid() != owner; }

}  // namespace dlock::detail
