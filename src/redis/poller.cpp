#include "redis/poller.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace dlock::detail::redis {
namespace {

using std::chrono::milliseconds;

int poll_timeout_ms(Poller::clock::time_point until) {
  auto left = until - Poller::clock::now();
  if (left <= Poller::clock::duration::zero()) return 0;
  return static_cast<int>(
      std::min<long long>(std::chrono::ceil<milliseconds>(left).count(), 1 << 30));
}

}  // namespace

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

Poller::Poller() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Poller::~Poller() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int Poller::wait(int fd, short events, clock::time_point until) {
  pollfd p[2] = {{wake_fd_, POLLIN, 0}, {fd, events, 0}};
  const int r = ::poll(p, fd >= 0 ? 2 : 1, poll_timeout_ms(until));
  if (r <= 0) return 0;
  if (p[0].revents) {
    std::uint64_t drained;
    [[maybe_unused]] auto ignored = ::read(wake_fd_, &drained, sizeof drained);
  }
  int got = fd >= 0 ? p[1].revents : 0;
  if (got & (POLLERR | POLLHUP)) got |= POLLIN | (events & POLLOUT);
  return got & (events | POLLIN);
}

void Poller::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(wake_fd_, &one, sizeof one);
}

int Poller::connect(const Address& target, clock::time_point until, Failure& why) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc =
      ::getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &found);
  if (rc != 0) {
    why = Failure{errc::unavailable, std::string("resolve: ") + ::gai_strerror(rc)};
    return -1;
  }
  why = Failure{errc::unavailable, "connect: no address for " + target.host};
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = Failure{errc::unavailable, errno_text("socket", errno)};
      continue;
    }
    int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      if (wait(fd, POLLOUT, until) & POLLOUT) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
    if (err != 0) {
      why = Failure{errc::unavailable, errno_text("connect", err)};
      ::close(fd);
      fd = -1;
      if (clock::now() >= until) break;
    }
  }
  ::freeaddrinfo(found);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

bool Poller::send_all(int fd, const std::string& wire, clock::time_point until, Failure& why) {
  std::size_t sent = 0;
  while (sent < wire.size()) {
    const ssize_t n = ::send(fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      why = Failure{errc::unavailable, errno_text("write", errno)};
      return false;
    } else if (!(wait(fd, POLLOUT, until) & POLLOUT)) {
      why = Failure{errc::unavailable, "write: no progress"};
      return false;
    }
  }
  return true;
}

}  // namespace dlock::detail::redis
