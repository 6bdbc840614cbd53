#include "redis/direct_connection.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>

#include "redis/connection_fsm.hpp"
#include "redis/poller.hpp"

namespace dlock::detail::redis {
namespace {

using clock = std::chrono::steady_clock;
using Step = ConnectionFsm::Step;

// One exchange() of one thread. Shared with the handlers of its requests in the pipeline,
// which outlive a caller that gave up (its replies still arrive, in order, and are dropped).
struct Call {
  Call(std::size_t n, std::uint64_t tag) : outcomes(n), remaining(n), tag(tag) {}
  std::vector<Outcome> outcomes;
  std::size_t remaining;
  const std::uint64_t tag;  // Its requests' tag in the pipeline.
  std::condition_variable_any cv;
};

const Failure kClosed{errc::closed, "store closed"};

class DirectConnection final : public Connection {
 public:
  explicit DirectConnection(ConnectionOptions o) : fsm_(std::move(o)) {}

  ~DirectConnection() override {
    if (fd_ >= 0) ::close(fd_);
  }

  bool exchange(std::vector<std::string> wires, std::vector<Outcome>& outcomes,
                clock::time_point deadline, std::stop_token stop) override {
    std::unique_lock lk(mu_);
    auto call = std::make_shared<Call>(wires.size(), ++last_tag_);
    if (closed_) {
      for (auto& o : call->outcomes) o = Outcome(kClosed);
      outcomes = std::move(call->outcomes);
      return true;
    }
    for (std::size_t i = 0; i < wires.size(); ++i) {
      pipeline_.enqueue(
          std::move(wires[i]),
          [this, call, i](Outcome&& out) {
            call->outcomes[i] = std::move(out);
            if (--call->remaining > 0) return;
            if (defer_notify_) {
              woken_.push_back(call);
            } else {
              call->cv.notify_one();
            }
          },
          call->tag);
    }
    waiting_.push_back(call.get());
    // While a leader waits for replies, write ours now (waking the leader to write them
    // measured no faster, and a lone follower would wait for the leader's reply first).
    if (leader_ && fsm_.ready()) flush_locked();
    while (call->remaining > 0) {
      if (!leader_) {
        leader_ = true;
        lk.unlock();
        const bool done = lead(*call, deadline, stop);
        lk.lock();
        leader_ = false;
        if (!done && call->remaining > 0) {
          give_up_locked(*call);
          pass_lead_locked();
          return false;
        }
        continue;
      }
      // A follower: the leader completes our requests, or leaves and hands us its role.
      if (!call->cv.wait_until(lk, stop, deadline,
                               [&] { return call->remaining == 0 || !leader_; })) {
        give_up_locked(*call);
        return false;
      }
    }
    std::erase(waiting_, call.get());
    if (!leader_) pass_lead_locked();  // We may have been handed the role as our reply came.
    outcomes = std::move(call->outcomes);
    return true;
  }

  void check_stale() override {
    std::lock_guard lk(mu_);
    // A leader enforces the request timeout itself.
    if (leader_) return;
    if (auto why = fsm_.stale(pipeline_.oldest_sent(), clock::now())) drop_locked(*why);
  }

  void reset() override {
    std::lock_guard lk(mu_);
    if (!fsm_.ready()) return;
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
    pipeline_.fail_all(kClosed);
    if (fd_ >= 0) {
      if (leader_) {
        ::shutdown(fd_, SHUT_RDWR);  // The leader wakes and closes it.
      } else {
        drop_locked(kClosed);
      }
    }
    poller_.wake();
  }

  bool ready() const override { return up_flag_.load(std::memory_order_relaxed); }
  const ConnectionOptions& options() const override { return fsm_.options(); }

 private:
  // The caller returns without its outcomes: its unwritten requests must not run.
  void give_up_locked(Call& call) {
    pipeline_.withdraw(call.tag);
    std::erase(waiting_, &call);
  }

  // The leader's loop: connects, writes, reads and completes requests (everybody's) until
  // `mine` is complete (true) or the deadline passes or a stop is requested (false).
  bool lead(Call& mine, clock::time_point deadline, const std::stop_token& stop) {
    std::stop_callback on_stop(stop, [this] { poller_.wake(); });
    std::unique_lock lk(mu_);
    for (;;) {
      if (mine.remaining == 0) return true;
      if (stop.stop_requested() || clock::now() >= deadline) return false;
      if (!fsm_.ready()) {
        connect(lk, deadline, stop);
        continue;
      }
      if (fsm_.probe_due(pipeline_.in_flight() > 0, clock::now())) {
        probe_idle_locked();
        if (!fsm_.ready()) continue;
      }
      flush_locked();
      const int fd = fd_;
      const bool want_write = !outbuf_.empty();
      auto until = deadline;
      if (auto oldest = pipeline_.oldest_sent()) {
        until = std::min(until, *oldest + fsm_.options().request_timeout);
      }
      lk.unlock();
      const int ready = poller_.wait(fd, POLLIN | (want_write ? POLLOUT : 0), until);
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
        } else if (!replies_.empty() || malformed) {
          deliver_locked(lk, malformed);
        }
      } else if (ready == 0) {
        if (auto why = fsm_.stale(pipeline_.oldest_sent(), clock::now())) drop_locked(*why);
      }
    }
  }

  // Completes the oldest requests in order with the replies parsed; wakes their callers
  // outside the lock, so they do not wake only to wait for it.
  void deliver_locked(std::unique_lock<std::mutex>& lk, bool malformed) {
    fsm_.on_reply(clock::now());
    defer_notify_ = true;
    bool in_step = true;
    for (auto& reply : replies_) {
      if (!pipeline_.deliver(std::move(reply))) {
        in_step = false;
        break;
      }
    }
    defer_notify_ = false;
    if (malformed || !in_step) {
      drop_locked(Failure{errc::protocol_error, "malformed or unexpected reply"});
    }
    if (woken_.empty()) return;
    lk.unlock();
    for (auto& c : woken_) c->cv.notify_one();
    woken_.clear();  // Only the leader fills and empties it.
    lk.lock();
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

  // An idle connection that the server closed is noticed before a request is written into
  // it; its queued requests stay queued for the next connection.
  void probe_idle_locked() {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0) close_socket_locked();
  }

  // One connection attempt by the leader, performing the state machine's steps with blocking
  // I/O (the lock released meanwhile). Leaves the connection up, or down with the queued
  // requests failed, or (cut short by the caller's deadline or stop, or a backoff to wait
  // out) down with them still queued.
  void connect(std::unique_lock<std::mutex>& lk, clock::time_point deadline,
               const std::stop_token& stop) {
    Step step = fsm_.start(clock::now());
    int fd = -1;
    auto close_fd = [&] {
      if (fd >= 0) ::close(fd);
      fd = -1;
    };
    for (;;) {
      // After I/O without the lock: was the attempt cut short (not the store's fault)?
      auto cut_short = [&] {
        if (!closed_ && !stop.stop_requested() && clock::now() < deadline) return false;
        fsm_.abort();
        close_fd();
        return true;
      };
      const auto until = std::min(step.deadline, deadline);
      switch (step.kind) {
        case Step::Kind::wait:  // Backing off after a failed attempt.
          lk.unlock();
          poller_.wait(-1, 0, until);
          lk.lock();
          return;
        case Step::Kind::connect: {
          close_fd();
          Failure why;
          lk.unlock();
          fd = poller_.connect(step.target, until, why);
          lk.lock();
          if (cut_short()) return;
          if (fd >= 0) {
            step = fsm_.on_connected(clock::now());
          } else if (clock::now() >= step.deadline) {
            step = fsm_.on_timeout(clock::now());
          } else {
            step = fsm_.on_io_error(why, clock::now());
          }
          continue;
        }
        case Step::Kind::write: {
          Failure why;
          lk.unlock();
          const bool sent = poller_.send_all(fd, step.wire, until, why);
          lk.lock();
          if (cut_short()) return;
          if (!sent) {
            step = clock::now() >= step.deadline ? fsm_.on_timeout(clock::now())
                                                 : fsm_.on_io_error(why, clock::now());
            continue;
          }
          step.kind = Step::Kind::read;
          continue;
        }
        case Step::Kind::read: {
          lk.unlock();
          const int got = poller_.wait(fd, POLLIN, until);
          ssize_t n = 0;
          int err = 0;
          if (got & POLLIN) {
            n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
            err = n < 0 ? errno : 0;
          }
          lk.lock();
          if (cut_short()) return;
          if (!(got & POLLIN)) {
            if (clock::now() >= step.deadline) step = fsm_.on_timeout(clock::now());
          } else if (n == 0) {
            step = fsm_.on_io_error(Failure{errc::unavailable, "connection closed by the server"},
                                    clock::now());
          } else if (n < 0) {
            if (err != EAGAIN && err != EINTR) {
              step = fsm_.on_io_error(Failure{errc::unavailable, errno_text("read", err)},
                                      clock::now());
            }
          } else {
            step = fsm_.on_bytes(buf_.data(), static_cast<std::size_t>(n), clock::now());
          }
          continue;
        }
        case Step::Kind::ready:
          fd_ = fd;
          up_flag_ = true;
          parser_.emplace();
          reset_reason_.reset();
          return;
        case Step::Kind::failed:
          close_fd();
          pipeline_.fail_all(step.failure);
          return;
      }
    }
  }

  // Moves the unwritten requests in flight and writes what the socket takes now; the leader
  // writes the rest when the socket is writable again.
  void flush_locked() {
    if (pipeline_.has_unwritten()) {
      if (outbuf_.empty()) {
        outbuf_ = pipeline_.take_batch(clock::now());
      } else {
        outbuf_ += pipeline_.take_batch(clock::now());
      }
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

  // Closes the socket and fails every request. Only the leader, or anyone while there is no
  // leader, may call it (the leader polls the descriptor without the lock).
  void drop_locked(const Failure& why) {
    close_socket_locked();
    pipeline_.fail_all(why);
  }

  void close_socket_locked() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    fsm_.on_dropped(clock::now());
    up_flag_ = false;
    outbuf_.clear();
    parser_.reset();
    reset_reason_.reset();
  }

  // Wakes the first caller still waiting, to lead.
  void pass_lead_locked() {
    for (Call* c : waiting_) {
      if (c->remaining > 0) {
        c->cv.notify_one();
        return;
      }
    }
  }

  Poller poller_;  // The leader waits in it; a stop request or close() wakes it.
  std::mutex mu_;
  // Guarded by mu_:
  ConnectionFsm fsm_;
  Pipeline pipeline_;
  bool leader_ = false;
  bool closed_ = false;
  bool defer_notify_ = false;  // The leader is delivering: it wakes the callers afterwards.
  int fd_ = -1;
  std::uint64_t last_tag_ = 0;
  std::vector<Call*> waiting_;  // Callers in exchange(), in arrival order.
  std::vector<std::shared_ptr<Call>> woken_;
  std::string outbuf_;                   // Written to the socket only in part so far.
  std::optional<Failure> reset_reason_;  // Why reset() shut the socket down.
  // The leader's (handed over under mu_):
  std::optional<RespParser> parser_;
  std::array<char, 64 * 1024> buf_{};
  std::vector<RespValue> replies_;
  std::atomic<bool> up_flag_{false};
};

}  // namespace

std::shared_ptr<Connection> make_direct_connection(ConnectionOptions options) {
  return std::make_shared<DirectConnection>(std::move(options));
}

}  // namespace dlock::detail::redis
