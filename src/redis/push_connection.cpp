// The Asio shell of a connection (TLS, pub/sub): it performs the steps of `ConnectionFsm` with
// asynchronous I/O on the store's I/O thread, and serves requests through `Pipeline`.
#include <openssl/ssl.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "redis/connection.hpp"
#include "redis/connection_fsm.hpp"

namespace dlock::detail::redis {
namespace {

using clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
using Step = ConnectionFsm::Step;

// What a blocked caller waits on.
struct Waiter {
  std::mutex mu;
  std::condition_variable_any cv;
  std::size_t remaining = 0;
  std::vector<Outcome> outcomes;
};

const Failure kClosed{errc::closed, "store closed"};

// Everything but submit/exchange/close/ready runs on the I/O thread.
class AsioConnection final : public PushConnection,
                             public std::enable_shared_from_this<AsioConnection> {
 public:
  AsioConnection(asio::io_context& io, ConnectionOptions o, Pipeline::PushFilter is_push,
                 Pipeline::PushHandler on_push, std::function<void()> on_lost)
      : io_(io),
        fsm_(std::move(o)),
        resolver_(io),
        timer_(io),
        pipeline_(std::move(is_push), std::move(on_push)),
        on_lost_(std::move(on_lost)) {}

  void submit(std::string wire, ReplyHandler handler) override {
    if (closed_flag_.load()) {
      handler(Outcome(kClosed));
      return;
    }
    // Requests from many threads meet in the inbox; only the first of a batch wakes the I/O
    // thread, which then takes them all (and writes them in one go).
    bool first;
    {
      std::lock_guard lk(inbox_mu_);
      first = inbox_.empty();
      inbox_.push_back(Request{std::move(wire), std::move(handler)});
    }
    if (first) asio::post(io_, [self = shared_from_this()] { self->drain_inbox(); });
  }

  bool exchange(std::vector<std::string> wires, std::vector<Outcome>& outcomes,
                clock::time_point deadline, std::stop_token stop) override {
    auto w = std::make_shared<Waiter>();
    w->remaining = wires.size();
    w->outcomes.resize(wires.size());
    for (std::size_t i = 0; i < wires.size(); ++i) {
      submit(std::move(wires[i]), [w, i](Outcome&& out) {
        std::lock_guard lk(w->mu);
        w->outcomes[i] = std::move(out);
        if (--w->remaining == 0) w->cv.notify_all();
      });
    }
    std::unique_lock lk(w->mu);
    if (!w->cv.wait_until(lk, stop, deadline, [&] { return w->remaining == 0; })) return false;
    outcomes = std::move(w->outcomes);
    return true;
  }

  void check_stale() override {
    asio::post(io_, [self = shared_from_this()] {
      if (auto why = self->fsm_.stale(self->pipeline_.oldest_sent(), clock::now())) {
        self->drop(*why);
      }
    });
  }

  void reset() override {
    asio::post(io_, [self = shared_from_this()] {
      if (self->fsm_.ready()) {
        self->drop(Failure{errc::unavailable, "connection reset: the node is not a master"});
      }
    });
  }

  void close() override {
    if (closed_flag_.exchange(true)) return;
    asio::post(io_, [self = shared_from_this()] {
      self->closed_ = true;
      self->drop(kClosed);
    });
  }

  bool ready() const override { return ready_flag_.load(); }
  const ConnectionOptions& options() const override { return fsm_.options(); }

 private:
  struct Request {
    std::string wire;
    ReplyHandler handler;
  };

  void drain_inbox() {
    std::vector<Request> batch;
    {
      std::lock_guard lk(inbox_mu_);
      batch.swap(inbox_);
    }
    if (batch.empty()) return;
    for (auto& r : batch) {
      if (closed_) {
        r.handler(Outcome(kClosed));
      } else {
        pipeline_.enqueue(std::move(r.wire), std::move(r.handler));
      }
    }
    if (closed_) return;
    if (fsm_.ready()) {
      write_more();
    } else if (!attempting_) {
      attempting_ = true;
      perform(fsm_.start(clock::now()));
    }
  }

  // Does what the state machine asks.
  void perform(Step step) {
    if (closed_) return;
    switch (step.kind) {
      case Step::Kind::wait: {
        const auto gen = ++gen_;
        timer_.expires_at(step.deadline);
        timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
          if (ec || gen != self->gen_ || self->closed_) return;
          self->perform(self->fsm_.start(clock::now()));
        });
        return;
      }
      case Step::Kind::connect:
        open(step);
        return;
      case Step::Kind::write: {
        arm_timer(step.deadline);
        const auto gen = gen_;
        sock_->out = std::move(step.wire);
        read_more(gen);
        with_stream([&](auto& s) {
          asio::async_write(
              s, asio::buffer(sock_->out),
              [self = shared_from_this(), sock = sock_, gen](std::error_code ec, std::size_t) {
                if (gen != self->gen_ || !ec) return;
                self->perform(self->fsm_.on_io_error(
                    Failure{errc::unavailable, "write: " + ec.message()}, clock::now()));
              });
        });
        return;
      }
      case Step::Kind::read:
        arm_timer(step.deadline);
        return;
      case Step::Kind::ready:
        attempting_ = false;
        ready_flag_ = true;
        timer_.cancel();
        write_more();
        return;
      case Step::Kind::failed:
        attempting_ = false;
        reset_socket();
        pipeline_.fail_all(step.failure);
        return;
    }
  }

  void arm_timer(clock::time_point deadline) {
    const auto gen = gen_;
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
      if (ec || gen != self->gen_ || !self->fsm_.connecting()) return;
      self->perform(self->fsm_.on_timeout(clock::now()));
    });
  }

  template <class F>
  void with_stream(F&& f) {
    if (sock_->tls) {
      f(*sock_->tls);
    } else {
      f(*sock_->plain);
    }
  }
  tcp::socket& socket() { return sock_->tls ? sock_->tls->next_layer() : *sock_->plain; }

  // The connect step: a fresh socket, resolve, TCP connect, then TLS if asked.
  void open(const Step& step) {
    close_socket();
    const auto gen = ++gen_;
    sock_ = std::make_shared<Socket>();
    if (step.tls) {
      sock_->tls = std::make_unique<asio::ssl::stream<tcp::socket>>(io_, *fsm_.options().tls);
    } else {
      sock_->plain = std::make_unique<tcp::socket>(io_);
    }
    arm_timer(step.deadline);
    auto fail = [self = shared_from_this(), gen](std::string why) {
      if (gen != self->gen_) return;
      self->perform(
          self->fsm_.on_io_error(Failure{errc::unavailable, std::move(why)}, clock::now()));
    };
    resolver_.async_resolve(
        step.target.host, std::to_string(step.target.port),
        [self = shared_from_this(), gen, fail, name = step.tls_name](
            std::error_code ec, tcp::resolver::results_type eps) {
          if (gen != self->gen_) return;
          if (ec) return fail("resolve: " + ec.message());
          asio::async_connect(
              self->socket(), eps,
              [self, sock = self->sock_, gen, fail, name](std::error_code ec2,
                                                          const tcp::endpoint&) {
                if (gen != self->gen_) return;
                if (ec2) return fail("connect: " + ec2.message());
                std::error_code ignored;
                self->socket().set_option(tcp::no_delay(true), ignored);
                if (!sock->tls) return self->perform(self->fsm_.on_connected(clock::now()));
                SSL_set_tlsext_host_name(sock->tls->native_handle(), name.c_str());
                if (self->fsm_.options().tls_verify) {
                  sock->tls->set_verify_callback(asio::ssl::host_name_verification(name));
                }
                sock->tls->async_handshake(asio::ssl::stream_base::client,
                                           [self, sock, gen, fail](std::error_code ec3) {
                                             if (gen != self->gen_) return;
                                             if (ec3)
                                               return fail("TLS handshake: " + ec3.message());
                                             self->perform(self->fsm_.on_connected(clock::now()));
                                           });
              });
        });
  }

  // Drops an established (or half-established) connection with `why`.
  void drop(const Failure& why) {
    const bool was_ready = fsm_.ready();
    if (fsm_.connecting()) fsm_.abort();
    fsm_.on_dropped(clock::now());
    attempting_ = false;
    reset_socket();
    pipeline_.fail_all(why);
    if (was_ready && !closed_ && on_lost_) {
      // Let the owner (the subscriber) queue its re-subscriptions, which reconnect.
      asio::post(io_, [self = shared_from_this()] {
        if (!self->closed_) self->on_lost_();
      });
    }
  }

  void close_socket() {
    std::error_code ignored;
    if (sock_) socket().close(ignored);
    sock_.reset();  // Its pending operations' handlers keep it until they ran.
    writing_ = false;
  }

  void reset_socket() {
    ++gen_;
    ready_flag_ = false;
    timer_.cancel();
    resolver_.cancel();
    close_socket();
  }

  void write_more() {
    if (!fsm_.ready() || writing_ || !pipeline_.has_unwritten()) return;
    sock_->out = pipeline_.take_batch();
    writing_ = true;
    const auto gen = gen_;
    with_stream([&](auto& s) {
      asio::async_write(
          s, asio::buffer(sock_->out),
          [self = shared_from_this(), sock = sock_, gen](std::error_code ec, std::size_t) {
            if (gen != self->gen_) return;
            self->writing_ = false;
            if (ec) return self->drop(Failure{errc::unavailable, "write: " + ec.message()});
            self->write_more();
          });
    });
  }

  void read_more(std::uint64_t gen) {
    with_stream([&](auto& s) {
      s.async_read_some(asio::buffer(sock_->in), [self = shared_from_this(), sock = sock_, gen](
                                                     std::error_code ec, std::size_t n) {
        if (gen != self->gen_) return;
        self->on_read(gen, ec, n);
      });
    });
  }

  void on_read(std::uint64_t gen, std::error_code ec, std::size_t n) {
    if (ec) {
      Failure why{errc::unavailable, ec == asio::error::eof
                                         ? std::string("connection closed by the server")
                                         : "read: " + ec.message()};
      if (fsm_.ready()) return drop(why);
      return perform(fsm_.on_io_error(why, clock::now()));
    }
    if (!fsm_.ready()) {
      perform(fsm_.on_bytes(sock_->in.data(), n, clock::now()));
    } else {
      fsm_.on_reply(clock::now());
      if (!pipeline_.feed(sock_->in.data(), n)) {
        if (gen == gen_) drop(Failure{errc::protocol_error, "malformed or unexpected reply"});
        return;
      }
    }
    // Still the same socket (a handler may have dropped it, or the lookup moved on).
    if (gen == gen_) read_more(gen);
  }

  asio::io_context& io_;
  ConnectionFsm fsm_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // The current step's deadline, or the backoff.
  // One connection's socket and buffers, kept alive by the handlers of its operations (an
  // aborted operation completes after the socket was closed and replaced).
  struct Socket {
    std::unique_ptr<tcp::socket> plain;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
    std::string out;  // The write in progress.
    std::array<char, 64 * 1024> in{};
  };
  std::shared_ptr<Socket> sock_;
  Pipeline pipeline_;
  std::function<void()> on_lost_;
  std::uint64_t gen_ = 0;  // Bumped per socket and per wait: stale handlers see a new value.
  bool attempting_ = false;
  bool writing_ = false;
  bool closed_ = false;
  std::mutex inbox_mu_;
  std::vector<Request> inbox_;  // Submitted by any thread, not yet taken by the I/O thread.
  std::atomic<bool> ready_flag_{false}, closed_flag_{false};
};

}  // namespace

std::shared_ptr<PushConnection> PushConnection::create(asio::io_context& io,
                                                       ConnectionOptions options,
                                                       Pipeline::PushFilter is_push,
                                                       Pipeline::PushHandler on_push,
                                                       std::function<void()> on_lost) {
  return std::make_shared<AsioConnection>(io, std::move(options), std::move(is_push),
                                          std::move(on_push), std::move(on_lost));
}

}  // namespace dlock::detail::redis
