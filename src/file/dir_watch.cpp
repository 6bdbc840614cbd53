#include "file/dir_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "file/alive_slots.hpp"
#include "file/file_error.hpp"
#include "file/lock_files.hpp"

namespace dlock::detail {

DirWatch::DirWatch(const std::filesystem::path& dir) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    throw Error(errc::unavailable, "file", "", "watch",
                std::string("inotify_init1: ") + std::strerror(errno) +
                    " (see /proc/sys/fs/inotify/max_user_instances)");
  }
  // Free-writes (IN_MOVED_FROM of "<stem>.f..."), deleted records, and a holder process
  // closing its `alive` file (exit or crash: IN_CLOSE_WRITE) are the events that can free a
  // lock. Acquire and renew writes wake nobody.
  constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR;
  if (::inotify_add_watch(inotify_fd_, dir.c_str(), kMask) < 0) {
    int err = errno;
    ::close(inotify_fd_);
    throw Error(file_errc(err) == errc::auth_failed ? errc::auth_failed : errc::unavailable, "file",
                "", "watch", "cannot watch " + dir.string() + ": " + std::strerror(err));
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    int err = errno;
    ::close(inotify_fd_);
    throw_file_error(err, "", "watch", "eventfd");
  }
  thread_ = std::thread([this] { run(); });
}

DirWatch::~DirWatch() {
  std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
  ::close(inotify_fd_);
}

std::uint64_t DirWatch::version_locked(const std::string& stem) const {
  auto it = versions_.find(stem);
  return epoch_ + (it == versions_.end() ? 0 : it->second);
}

std::uint64_t DirWatch::version(const std::string& stem) {
  std::lock_guard lk(mu_);
  return version_locked(stem);
}

bool DirWatch::wait_change(const std::string& stem, std::uint64_t seen, const Context& ctx,
                           std::chrono::steady_clock::time_point until) {
  std::unique_lock lk(mu_);
  return changed_.wait_until(lk, ctx.stop_token(), std::min(until, ctx.deadline()),
                             [&] { return version_locked(stem) != seen; });
}

void DirWatch::run() {
  alignas(inotify_event) char buf[16 * 1024];
  pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) continue;
    bool any = false;
    std::lock_guard lk(mu_);
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        ++epoch_;
        any = true;
        continue;
      }
      if (ev->len == 0) continue;
      const std::string name(ev->name);
      std::optional<std::string> stem;
      if (ev->mask & IN_MOVED_FROM) stem = stem_of_free_write(name);
      if (ev->mask & IN_DELETE) stem = stem_of_state_file(name);
      if (stem) {
        ++versions_[*stem];
        any = true;
      } else if (name == kAliveFile) {
        ++epoch_;  // A holder process went away: any of its locks may be free.
        any = true;
      }
    }
    if (any) changed_.notify_all();
  }
}

}  // namespace dlock::detail
