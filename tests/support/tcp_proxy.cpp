#include "support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace dlock::test {
namespace {

int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Pair {
  int client, server;
};

}  // namespace

TcpProxy::TcpProxy(std::uint16_t target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::pipe(wake_) != 0) {
    throw std::runtime_error("proxy: cannot listen");
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void TcpProxy::drop() {
  mode_ = Mode::drop;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
}

void TcpProxy::blackhole() {
  mode_ = Mode::blackhole;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
}

void TcpProxy::restore() {
  mode_ = Mode::pass;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
}

void TcpProxy::loop() {
  std::vector<Pair> pairs;
  auto close_pair = [](Pair& p) {
    ::close(p.client);
    ::close(p.server);
  };
  while (!stop_) {
    if (mode_ == Mode::drop) {
      for (auto& p : pairs) close_pair(p);
      pairs.clear();
    }
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    const bool forward = mode_ == Mode::pass;
    for (auto& p : pairs) {
      fds.push_back({p.client, static_cast<short>(forward ? POLLIN : 0), 0});
      fds.push_back({p.server, static_cast<short>(forward ? POLLIN : 0), 0});
    }
    if (::poll(fds.data(), fds.size(), 200) < 0) continue;
    const std::size_t polled = pairs.size();  // Pairs accepted below have no pollfd yet.
    if (fds[0].revents & POLLIN) {
      char buf[64];
      (void)!::read(wake_[0], buf, sizeof buf);
    }
    if (fds[1].revents & POLLIN) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        int s = mode_ == Mode::drop ? -1 : connect_loopback(target_port_);
        if (s < 0) {
          ::close(c);
        } else {
          pairs.push_back({c, s});
        }
      }
    }
    if (!forward) continue;
    std::vector<std::size_t> dead;
    for (std::size_t i = 0; i < polled; ++i) {
      for (int side = 0; side < 2; ++side) {
        auto& pfd = fds[2 + 2 * i + static_cast<std::size_t>(side)];
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = side == 0 ? pairs[i].client : pairs[i].server;
        int to = side == 0 ? pairs[i].server : pairs[i].client;
        char buf[16384];
        ssize_t n = ::read(from, buf, sizeof buf);
        bool ok = n > 0;
        for (ssize_t off = 0; ok && off < n;) {
          ssize_t w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) ok = false;
          off += w;
        }
        if (!ok) {
          dead.push_back(i);
          break;
        }
      }
    }
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
      close_pair(pairs[*it]);
      pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
  for (auto& p : pairs) close_pair(p);
}

}  // namespace dlock::test
