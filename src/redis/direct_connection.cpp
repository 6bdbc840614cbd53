#include "redis/direct_connection.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "redis/errors.hpp"
#include "redis/sentinel.hpp"

namespace dlock::detail::redis {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One exchange() of one thread. Shared with the request queues, which outlive a caller that
// gave up (its replies still arrive, in order, and are dropped).
struct Call {
  explicit Call(std::size_t n) : outcomes(n), remaining(n) {}
  std::vector<Outcome> outcomes;
  std::size_t remaining;
  bool abandoned = false;  // The caller returned: never hand it the lead, never send its rest.
  std::condition_variable_any cv;
};

struct Request {
  std::shared_ptr<Call> call;
  std::size_t index = 0;
  std::string wire;  // Until written.
  clock::time_point sent{};
};

int poll_timeout_ms(clock::time_point until) {
  auto left = until - clock::now();
  if (left <= clock::duration::zero()) return 0;
  return static_cast<int>(
      std::min<long long>(std::chrono::ceil<milliseconds>(left).count(), 1 << 30));
}

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

class DirectConnection final : public Connection {
 public:
  explicit DirectConnection(ConnectionOptions o)
      : opts_(std::move(o)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  ~DirectConnection() override {
    if (fd_ >= 0) ::close(fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool exchange(std::vector<std::string> wires, std::vector<Outcome>& outcomes,
                clock::time_point deadline, std::stop_token stop) override {
    auto call = std::make_shared<Call>(wires.size());
    std::unique_lock lk(mu_);
    if (closed_) {
      for (auto& o : call->outcomes) o = Outcome{std::nullopt, closed_failure()};
      outcomes = std::move(call->outcomes);
      return true;
    }
    for (std::size_t i = 0; i < wires.size(); ++i) {
      unwritten_.push_back(Request{call, i, std::move(wires[i]), {}});
    }
    // While a leader waits for replies, write ours now (waking the leader to write them
    // measured no faster, and a lone follower would wait for the leader's reply first).
    if (leader_ && state_ == State::up) flush_locked();
    while (call->remaining > 0) {
      if (!leader_) {
        leader_ = true;
        lk.unlock();
        const bool done = lead(*call, deadline, stop);
        lk.lock();
        leader_ = false;
        if (!done && call->remaining > 0) {
          call->abandoned = true;
          pass_lead_locked();
          return false;
        }
        continue;
      }
      // A follower: the leader completes our requests, or leaves and hands us its role.
      if (!call->cv.wait_until(lk, stop, deadline,
                               [&] { return call->remaining == 0 || !leader_; })) {
        call->abandoned = true;
        return false;
      }
    }
    if (!leader_) pass_lead_locked();  // We may have been handed the role as our reply came.
    outcomes = std::move(call->outcomes);
    return true;
  }

  void check_stale() override {
    std::lock_guard lk(mu_);
    // A leader enforces the command timeout itself.
    if (!leader_ && state_ == State::up && !in_flight_.empty() &&
        clock::now() - in_flight_.front().sent >= opts_.command_timeout) {
      drop_locked(stale_failure());
    }
  }

  void reset() override {
    std::lock_guard lk(mu_);
    if (state_ != State::up) return;
    const Failure why{errc::unavailable, "connection reset: the node is not a master"};
    if (leader_) {
      reset_reason_ = why;
      ::shutdown(fd_, SHUT_RDWR);  // Wakes the leader, which drops the connection.
    } else {
      drop_locked(why);
    }
  }

  void close() override {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    fail_all_locked(closed_failure());
    if (fd_ >= 0) {
      if (leader_) {
        ::shutdown(fd_, SHUT_RDWR);  // The leader wakes and closes it.
      } else {
        drop_locked(closed_failure());
      }
    }
    wake();
  }

  bool ready() const override { return up_flag_.load(std::memory_order_relaxed); }
  const ConnectionOptions& options() const override { return opts_; }

 private:
  enum class State { down, connecting, up };

  static Failure closed_failure() { return Failure{errc::closed, "store closed"}; }
  Failure stale_failure() const {
    return Failure{errc::timeout, "no reply within the command timeout (" +
                                      std::to_string(opts_.command_timeout.count()) +
                                      " ms); connection reset"};
  }

  // The leader's loop: connects, writes, reads and completes requests (everybody's) until
  // `mine` is complete (true) or the deadline passes or a stop is requested (false).
  bool lead(Call& mine, clock::time_point deadline, const std::stop_token& stop) {
    std::stop_callback on_stop(stop, [this] { wake(); });
    std::unique_lock lk(mu_);
    for (;;) {
      if (mine.remaining == 0) return true;
      if (stop.stop_requested() || clock::now() >= deadline) return false;
      if (state_ != State::up) {
        if (clock::now() < next_connect_) {  // Backing off after a failed connect.
          const auto until = std::min(next_connect_, deadline);
          lk.unlock();
          wait_fd(-1, 0, until);
          lk.lock();
          continue;
        }
        state_ = State::connecting;
        lk.unlock();
        connect(deadline, stop);
        lk.lock();
        continue;
      }
      if (in_flight_.empty() && clock::now() - last_reply_ >= kProbeIdleAfter) {
        probe_idle_locked();
      }
      if (state_ != State::up) continue;
      flush_locked();
      const int fd = fd_;
      const bool want_write = !outbuf_.empty();
      auto until = deadline;
      if (!in_flight_.empty()) {
        until = std::min(until, in_flight_.front().sent + opts_.command_timeout);
      }
      lk.unlock();
      const int ready = wait_fd(fd, POLLIN | (want_write ? POLLOUT : 0), until);
      ssize_t n = 0;
      int err = 0;
      bool malformed = false;
      replies_.clear();
      if (ready & POLLIN) {
        n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
        err = n < 0 ? errno : 0;
        if (n > 0) malformed = !parse(static_cast<std::size_t>(n));
      }
      lk.lock();
      if (ready & POLLIN) {
        if (n == 0) {
          drop_locked(reset_reason_.value_or(
              Failure{errc::unavailable, "connection closed by the server"}));
        } else if (n < 0 && err != EAGAIN && err != EINTR) {
          drop_locked(Failure{errc::unavailable, errno_text("read", err)});
        } else if (malformed || replies_.size() > in_flight_.size()) {
          drop_locked(Failure{errc::protocol_error, "malformed or unexpected reply"});
        } else if (!replies_.empty()) {
          // Complete the oldest requests in order; wake their callers outside the lock, so
          // they do not wake only to wait for it.
          last_reply_ = clock::now();
          for (auto& reply : replies_) {
            if (complete_locked(in_flight_.front(), Outcome{std::move(reply), {}}, false)) {
              woken_.push_back(in_flight_.front().call);
            }
            in_flight_.pop_front();
          }
          lk.unlock();
          for (auto& c : woken_) c->cv.notify_one();
          woken_.clear();
          lk.lock();
        }
      } else if (ready == 0 && !in_flight_.empty() &&
                 clock::now() - in_flight_.front().sent >= opts_.command_timeout) {
        drop_locked(stale_failure());  // A server that accepts and never answers.
      }
    }
  }

  // Parses `n` bytes read into `replies_` (the leader's, without the lock); false if malformed.
  bool parse(std::size_t n) {
    try {
      parser_->feed(buf_.data(), n);
      while (auto reply = parser_->next()) replies_.push_back(std::move(*reply));
      return true;
    } catch (const std::runtime_error&) {
      return false;
    }
  }

  // An idle connection that the server closed (its `timeout`, a restart) is noticed before a
  // request is written into it, so that the request goes out on a fresh connection. Not
  // checked on a connection that answered within the last moment (it costs a system call).
  static constexpr auto kProbeIdleAfter = milliseconds(20);
  void probe_idle_locked() {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0) close_socket_locked();  // Its queued requests stay queued.
  }

  // Called by the leader with the lock released; leaves the state up, or down with the
  // unwritten requests failed (unless the caller's own deadline or stop cut the attempt).
  void connect(clock::time_point deadline, const std::stop_token& stop) {
    const auto timeout_at = clock::now() + opts_.connect_timeout;
    const auto until = std::min(timeout_at, deadline);
    Failure why;
    int fd = open_socket(until, why);
    if (fd >= 0 && !handshake(fd, until, why)) {
      ::close(fd);
      fd = -1;
    }
    std::lock_guard lk(mu_);
    if (fd >= 0 && !closed_) {
      fd_ = fd;
      last_reply_ = clock::now();
      state_ = State::up;
      up_flag_ = true;
      failures_ = 0;
      parser_.emplace();
      reset_reason_.reset();
      return;
    }
    if (fd >= 0) ::close(fd);
    state_ = State::down;
    if (closed_) return;
    const bool cut_short =
        stop.stop_requested() || (deadline < timeout_at && clock::now() >= deadline);
    if (cut_short) return;  // Not the store's fault: the next leader tries again.
    ++failures_;
    const auto delay = milliseconds(50) * (1 << std::min(failures_ - 1, 6));
    next_connect_ = clock::now() + std::min<milliseconds>(delay, milliseconds(2000));
    std::deque<Request> failed;
    failed.swap(unwritten_);
    for (auto& r : failed) complete_locked(r, Outcome{std::nullopt, why});
  }

  // Resolves (asking the sentinels first, if any) and connects; -1 with `why` on failure.
  int open_socket(clock::time_point until, Failure& why) {
    std::string host = opts_.host;
    std::uint16_t port = opts_.port;
    if (opts_.locator) {
      SentinelLocator::Address master;
      std::string error;
      if (!opts_.locator->locate(master, error)) {
        why = Failure{errc::unavailable, "sentinel: " + error};
        return -1;
      }
      host = master.host;
      port = master.port;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
      why = Failure{errc::unavailable, std::string("resolve: ") + ::gai_strerror(rc)};
      return -1;
    }
    why = Failure{errc::unavailable, "connect: no address for " + host};
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        why = Failure{errc::unavailable, errno_text("socket", errno)};
        continue;
      }
      int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        if (wait_fd(fd, POLLOUT, until) & POLLOUT) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
      if (err != 0) {
        why = err == ETIMEDOUT ? connect_timeout_failure()
                               : Failure{errc::unavailable, errno_text("connect", err)};
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

  Failure connect_timeout_failure() const {
    return Failure{errc::unavailable, "no connection within the connect timeout (" +
                                          std::to_string(opts_.connect_timeout.count()) + " ms)"};
  }

  // AUTH, SELECT, ROLE, PING before any request, within the connect timeout.
  bool handshake(int fd, clock::time_point until, Failure& why) {
    const auto cmds = handshake_commands(opts_);
    std::string out;
    for (auto& c : cmds) out += format_command(std::vector<std::string_view>(c.begin(), c.end()));
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        why = Failure{errc::unavailable, errno_text("write", errno)};
        return false;
      } else if (!(wait_fd(fd, POLLOUT, until) & POLLOUT)) {
        why = connect_timeout_failure();
        return false;
      }
    }
    RespParser parser;
    std::size_t answered = 0;
    try {
      while (answered < cmds.size()) {
        if (auto reply = parser.next()) {
          if (auto bad = handshake_failure(cmds[answered][0], Outcome{std::move(reply), {}})) {
            why = *bad;
            return false;
          }
          ++answered;
          continue;
        }
        if (!(wait_fd(fd, POLLIN, until) & POLLIN)) {
          why = connect_timeout_failure();
          return false;
        }
        const ssize_t n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
        if (n == 0) {
          why = Failure{errc::unavailable, "connection closed by the server"};
          return false;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          why = Failure{errc::unavailable, errno_text("read", errno)};
          return false;
        }
        if (n > 0) parser.feed(buf_.data(), static_cast<std::size_t>(n));
      }
    } catch (const std::runtime_error&) {
      why = Failure{errc::protocol_error, "malformed reply to the handshake"};
      return false;
    }
    return true;
  }

  // Waits until `fd` (if any) has one of `events`, the wake-up descriptor fires or `until`;
  // returns the events of `fd` (0 when woken or timed out).
  int wait_fd(int fd, short events, clock::time_point until) {
    pollfd p[2] = {{wake_fd_, POLLIN, 0}, {fd, events, 0}};
    const int r = ::poll(p, fd >= 0 ? 2 : 1, poll_timeout_ms(until));
    if (r <= 0) return 0;
    if (p[0].revents) {
      std::uint64_t drained;
      [[maybe_unused]] auto ignored = ::read(wake_fd_, &drained, sizeof drained);
    }
    // An error or hang-up is reported as readable: the read that follows says what it was.
    int got = fd >= 0 ? p[1].revents : 0;
    if (got & (POLLERR | POLLHUP)) got |= POLLIN | (events & POLLOUT);
    return got & (events | POLLIN);
  }

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto ignored = ::write(wake_fd_, &one, sizeof one);
  }

  // Moves the unwritten requests in flight and writes what the socket takes now; the leader
  // writes the rest when the socket is writable again.
  void flush_locked() {
    const auto now = clock::now();
    while (!unwritten_.empty()) {
      Request r = std::move(unwritten_.front());
      unwritten_.pop_front();
      if (r.call->abandoned) continue;  // Nobody waits for it: do not run it.
      outbuf_ += r.wire;
      r.wire = std::string();
      r.sent = now;
      in_flight_.push_back(std::move(r));
    }
    std::size_t sent = 0;
    while (sent < outbuf_.size()) {
      const ssize_t n =
          ::send(fd_, outbuf_.data() + sent, outbuf_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;  // Full (the leader waits for POLLOUT) or broken (its read will say why).
      }
    }
    outbuf_.erase(0, sent);
  }

  // Records an outcome; returns whether that completed the call (then notified, if `notify`).
  bool complete_locked(Request& r, Outcome&& out, bool notify = true) {
    r.call->outcomes[r.index] = std::move(out);
    if (--r.call->remaining > 0) return false;
    if (notify) r.call->cv.notify_one();
    return true;
  }

  void fail_all_locked(const Failure& why) {
    std::deque<Request> failed;
    failed.swap(in_flight_);
    for (auto& r : unwritten_) failed.push_back(std::move(r));
    unwritten_.clear();
    for (auto& r : failed) complete_locked(r, Outcome{std::nullopt, why});
  }

  // Closes the socket and fails every request. Only the leader, or anyone while there is no
  // leader, may call it (the leader polls the descriptor without the lock).
  void drop_locked(const Failure& why) {
    close_socket_locked();
    fail_all_locked(why);
  }

  void close_socket_locked() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (state_ == State::up) next_connect_ = clock::now();  // A healthy connection retries at once.
    state_ = State::down;
    up_flag_ = false;
    outbuf_.clear();
    parser_.reset();
    reset_reason_.reset();
  }

  // Wakes the first caller still waiting, to lead.
  void pass_lead_locked() {
    for (auto* q : {&in_flight_, &unwritten_}) {
      for (auto& r : *q) {
        if (!r.call->abandoned && r.call->remaining > 0) {
          r.call->cv.notify_one();
          return;
        }
      }
    }
  }

  const ConnectionOptions opts_;
  const int wake_fd_;  // Wakes a leader's poll: a stop request, close().
  std::mutex mu_;
  // Guarded by mu_:
  State state_ = State::down;
  bool leader_ = false;
  bool closed_ = false;
  int fd_ = -1;
  int failures_ = 0;
  clock::time_point next_connect_{};
  clock::time_point last_reply_{};
  std::deque<Request> unwritten_, in_flight_;
  std::string outbuf_;                   // Written to the socket only in part so far.
  std::optional<Failure> reset_reason_;  // Why reset() shut the socket down.
  // The leader's (handed over under mu_):
  std::optional<RespParser> parser_;
  std::array<char, 64 * 1024> buf_{};
  std::vector<RespValue> replies_;
  std::vector<std::shared_ptr<Call>> woken_;
  std::atomic<bool> up_flag_{false};
};

}  // namespace

std::shared_ptr<Connection> make_direct_connection(ConnectionOptions options) {
  return std::make_shared<DirectConnection>(std::move(options));
}

}  // namespace dlock::detail::redis
