#include "redis/connection.hpp"

#include <openssl/ssl.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "dlock/error.hpp"
#include "redis/direct_connection.hpp"
#include "redis/errors.hpp"
#include "redis/sentinel.hpp"

namespace dlock::detail::redis {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using tcp = asio::ip::tcp;

// ---- IoThread ----

struct IoThread::Impl {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  std::once_flag stopped;
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {}
IoThread::~IoThread() { stop(); }
asio::io_context& IoThread::context() { return impl_->io; }

void IoThread::stop() noexcept {
  std::call_once(impl_->stopped, [this] {
    // Handlers posted before now (closing connections) run first; then the loop ends.
    asio::post(impl_->io, [this] { impl_->io.stop(); });
    if (impl_->thread.joinable()) {
      if (impl_->thread.get_id() == std::this_thread::get_id()) {
        impl_->thread.detach();
      } else {
        impl_->thread.join();
      }
    }
  });
}

// ---- Handshake ----

std::vector<std::vector<std::string>> handshake_commands(const ConnectionOptions& o) {
  std::vector<std::vector<std::string>> cmds;
  if (o.has_password) {
    if (o.user.empty()) {
      cmds.push_back({"AUTH", o.password});
    } else {
      cmds.push_back({"AUTH", o.user, o.password});
    }
  }
  if (o.db != 0 && !o.subscriber) cmds.push_back({"SELECT", std::to_string(o.db)});
  if (o.locator) cmds.push_back({"ROLE"});
  cmds.push_back({"PING"});
  return cmds;
}

std::optional<Failure> handshake_failure(const std::string& command, const Outcome& out) {
  if (!out.reply) return out.failure;
  if (out.reply->is_error()) {
    return Failure{classify_server_error(out.reply->str),
                   command + " refused: " + out.reply->str.substr(0, 200)};
  }
  if (command == "ROLE" &&
      (out.reply->elements.empty() || out.reply->elements[0].str != "master")) {
    return Failure{errc::unavailable,
                   "the sentinels' master is not a master (failover in progress)"};
  }
  return std::nullopt;
}

// ---- Connection ----

namespace {

// What a blocked caller waits on.
struct Waiter {
  std::mutex mu;
  std::condition_variable_any cv;
  std::size_t remaining = 0;
  std::vector<Outcome> outcomes;
};

class AsioConnection final : public PushConnection,
                             public std::enable_shared_from_this<AsioConnection> {
 public:
  AsioConnection(asio::io_context& io, ConnectionOptions o, Pipeline::PushFilter is_push,
                 Pipeline::PushHandler on_push, std::function<void()> on_lost)
      : io_(io),
        opts_(std::move(o)),
        resolver_(io),
        timer_(io),
        backoff_timer_(io),
        pipeline_(std::move(is_push), std::move(on_push)),
        on_lost_(std::move(on_lost)) {}

  void submit(std::string wire, ReplyHandler handler) override {
    if (closed_flag_.load()) {
      handler(Outcome{std::nullopt, Failure{errc::closed, "store closed"}});
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
      auto oldest = self->pipeline_.oldest_sent();
      if (self->state_ == State::ready && oldest &&
          clock::now() - *oldest >= self->opts_.command_timeout) {
        self->drop(Failure{errc::timeout, "no reply within the command timeout (" +
                                              std::to_string(self->opts_.command_timeout.count()) +
                                              " ms); connection reset"});
      }
    });
  }

  void reset() override {
    asio::post(io_, [self = shared_from_this()] {
      if (self->state_ == State::ready) {
        self->drop(Failure{errc::unavailable, "connection reset: the node is not a master"});
      }
    });
  }

  void close() override {
    if (closed_flag_.exchange(true)) return;
    asio::post(io_, [self = shared_from_this()] {
      self->closed_ = true;
      self->drop(Failure{errc::closed, "store closed"});
    });
  }

  bool ready() const override { return ready_flag_.load(); }
  const ConnectionOptions& options() const override { return opts_; }

 private:
  enum class State { idle, waiting, connecting, ready };

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
        r.handler(Outcome{std::nullopt, Failure{errc::closed, "store closed"}});
      } else {
        pipeline_.enqueue(std::move(r.wire), std::move(r.handler));
      }
    }
    if (closed_) return;
    if (state_ == State::ready) {
      write_more();
    } else if (state_ == State::idle) {
      schedule_connect();
    }
  }

  // Connects now or after the backoff of the previous failure.
  void schedule_connect() {
    auto now = clock::now();
    if (next_connect_ <= now) {
      start_connect();
      return;
    }
    state_ = State::waiting;
    backoff_timer_.expires_at(next_connect_);
    backoff_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->closed_ || self->state_ != State::waiting) return;
      self->start_connect();
    });
  }

  template <class F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*tcp_);
    }
  }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *tcp_; }

  void start_connect() {
    state_ = State::connecting;
    const auto gen = ++gen_;
    if (opts_.tls) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(io_, *opts_.tls);
      tcp_.reset();
    } else {
      tcp_ = std::make_unique<tcp::socket>(io_);
      tls_.reset();
    }
    host_ = opts_.host;
    port_ = opts_.port;
    if (opts_.locator) {
      // Blocks this I/O thread for at most the connect timeout (the sentinels are asked in
      // turn, each for a share of it); nothing else can progress before the master is known.
      SentinelLocator::Address master;
      std::string error;
      if (!opts_.locator->locate(master, error)) {
        connect_failed(Failure{errc::unavailable, "sentinel: " + error});
        return;
      }
      host_ = master.host;
      port_ = master.port;
    }
    timer_.expires_after(opts_.connect_timeout);
    timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
      if (ec || gen != self->gen_ || self->state_ != State::connecting) return;
      self->connect_failed(Failure{
          errc::unavailable, "no connection within the connect timeout (" +
                                 std::to_string(self->opts_.connect_timeout.count()) + " ms)"});
    });
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self = shared_from_this(), gen](std::error_code ec, tcp::resolver::results_type eps) {
          if (gen != self->gen_ || self->state_ != State::connecting) return;
          if (ec) {
            self->connect_failed(Failure{errc::unavailable, "resolve: " + ec.message()});
            return;
          }
          asio::async_connect(self->socket(), eps,
                              [self, gen](std::error_code ec2, const tcp::endpoint&) {
                                self->on_tcp_connected(gen, ec2);
                              });
        });
  }

  void on_tcp_connected(std::uint64_t gen, std::error_code ec) {
    if (gen != gen_ || state_ != State::connecting) return;
    if (ec) {
      connect_failed(Failure{errc::unavailable, "connect: " + ec.message()});
      return;
    }
    std::error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
    if (!tls_) {
      handshake(gen);
      return;
    }
    const std::string& name = opts_.tls_name.empty() ? host_ : opts_.tls_name;
    SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
    if (opts_.tls_verify) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
    tls_->async_handshake(
        asio::ssl::stream_base::client, [self = shared_from_this(), gen](std::error_code ec2) {
          if (gen != self->gen_ || self->state_ != State::connecting) return;
          if (ec2) {
            self->connect_failed(Failure{errc::unavailable, "TLS handshake: " + ec2.message()});
            return;
          }
          self->handshake(gen);
        });
  }

  // The handshake ahead of every queued request; the requests are written only once all
  // of it succeeded (a failed SELECT must not let a request run in another database).
  void handshake(std::uint64_t gen) {
    const auto cmds = handshake_commands(opts_);
    auto failed = std::make_shared<bool>(false);
    const std::size_t n = cmds.size();
    for (std::size_t i = n; i-- > 0;) {
      const std::string what = cmds[i][0];
      const bool last = i + 1 == n;
      std::vector<std::string_view> args(cmds[i].begin(), cmds[i].end());
      pipeline_.prepend(format_command(args),
                        [self = shared_from_this(), gen, failed, what, last](Outcome&& out) {
                          if (*failed || gen != self->gen_) return;
                          if (auto f = handshake_failure(what, out)) {
                            *failed = true;
                            // Never drop the pipeline from inside its own feed loop.
                            asio::post(self->io_, [self, gen, f = *f] {
                              if (gen == self->gen_ && self->state_ == State::connecting)
                                self->connect_failed(f);
                            });
                            return;
                          }
                          if (last) self->on_ready(gen);
                        });
    }
    read_more(gen);
    write_buf_ = pipeline_.take_batch(clock::now(), n);
    writing_ = true;
    with_stream([&](auto& s) {
      asio::async_write(s, asio::buffer(write_buf_),
                        [self = shared_from_this(), gen](std::error_code ec, std::size_t) {
                          self->on_written(gen, ec);
                        });
    });
  }

  void on_ready(std::uint64_t gen) {
    if (gen != gen_) return;
    state_ = State::ready;
    ready_flag_ = true;
    failures_ = 0;
    timer_.cancel();
    write_more();
  }

  void connect_failed(const Failure& f) {
    ++failures_;
    auto delay = milliseconds(50) * (1 << std::min(failures_ - 1, 6));
    next_connect_ = clock::now() + std::min<milliseconds>(delay, milliseconds(2000));
    reset_socket();
    pipeline_.fail_all(f);
  }

  void drop(const Failure& f) {
    const bool was_ready = state_ == State::ready;
    reset_socket();
    if (was_ready) next_connect_ = clock::now();  // A healthy connection retries at once.
    pipeline_.fail_all(f);
    if (was_ready && !closed_ && on_lost_) {
      // Let the owner (the subscriber) queue its re-subscriptions, which reconnect.
      asio::post(io_, [self = shared_from_this()] {
        if (!self->closed_) self->on_lost_();
      });
    }
  }

  void reset_socket() {
    ++gen_;
    state_ = State::idle;
    ready_flag_ = false;
    writing_ = false;
    std::error_code ignored;
    timer_.cancel();
    backoff_timer_.cancel();
    resolver_.cancel();
    if (tls_ || tcp_) socket().close(ignored);
  }

  void write_more() {
    if (state_ != State::ready || writing_ || !pipeline_.has_unwritten()) return;
    write_buf_ = pipeline_.take_batch();
    writing_ = true;
    const auto gen = gen_;
    with_stream([&](auto& s) {
      asio::async_write(s, asio::buffer(write_buf_),
                        [self = shared_from_this(), gen](std::error_code ec, std::size_t) {
                          self->on_written(gen, ec);
                        });
    });
  }

  void on_written(std::uint64_t gen, std::error_code ec) {
    if (gen != gen_) return;
    writing_ = false;
    if (ec) {
      lost(gen, "write: " + ec.message());
      return;
    }
    write_more();
  }

  void read_more(std::uint64_t gen) {
    with_stream([&](auto& s) {
      s.async_read_some(asio::buffer(read_buf_), [self = shared_from_this(), gen](
                                                     std::error_code ec, std::size_t n) {
        if (gen != self->gen_) return;
        if (ec) {
          self->lost(gen, ec == asio::error::eof ? std::string("connection closed by the server")
                                                 : "read: " + ec.message());
          return;
        }
        if (!self->pipeline_.feed(self->read_buf_.data(), n)) {
          if (gen != self->gen_) return;
          self->drop(Failure{errc::protocol_error, "malformed or unexpected reply"});
          return;
        }
        if (gen == self->gen_) self->read_more(gen);
      });
    });
  }

  void lost(std::uint64_t gen, const std::string& why) {
    if (gen != gen_) return;
    if (state_ == State::connecting) {
      connect_failed(Failure{errc::unavailable, why});
    } else {
      drop(Failure{errc::unavailable, why});
    }
  }

  asio::io_context& io_;
  ConnectionOptions opts_;
  std::string host_;  // Where this connect goes (the sentinels' answer, or opts_.host).
  std::uint16_t port_ = 0;
  tcp::resolver resolver_;
  asio::steady_timer timer_, backoff_timer_;
  std::unique_ptr<tcp::socket> tcp_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  Pipeline pipeline_;
  std::function<void()> on_lost_;
  State state_ = State::idle;
  std::uint64_t gen_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  int failures_ = 0;
  clock::time_point next_connect_{};
  std::string write_buf_;
  std::array<char, 64 * 1024> read_buf_{};
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

std::shared_ptr<Connection> Connection::create(asio::io_context& io, ConnectionOptions options) {
  if (options.tls) return PushConnection::create(io, std::move(options));
  return make_direct_connection(std::move(options));
}

std::vector<RespValue> call_many(Connection& conn, const Context& ctx, std::string_view scheme,
                                 const std::string& key, const std::string& step,
                                 const std::vector<std::vector<std::string_view>>& commands) {
  if (ctx.stop_requested()) throw Error(errc::cancelled, std::string(scheme), key, step);
  std::vector<std::string> wires;
  wires.reserve(commands.size());
  for (auto& c : commands) wires.push_back(format_command(c));
  const auto& o = conn.options();
  auto budget = o.command_timeout + (conn.ready() ? milliseconds(0) : o.connect_timeout);
  auto own_deadline = clock::now() + budget;
  auto deadline = std::min(own_deadline, ctx.deadline());
  std::vector<Outcome> outcomes;
  if (!conn.exchange(std::move(wires), outcomes, deadline, ctx.stop_token())) {
    if (ctx.stop_requested()) throw Error(errc::cancelled, std::string(scheme), key, step);
    if (deadline == own_deadline) {
      conn.check_stale();
      throw Error(errc::timeout, std::string(scheme), key, step,
                  "no reply within " + std::to_string(budget.count()) + " ms");
    }
    throw Error(errc::timeout, std::string(scheme), key, step, "deadline passed");
  }
  std::vector<RespValue> replies;
  replies.reserve(commands.size());
  for (auto& out : outcomes) {
    if (!out.reply) throw_failure(scheme, key, step, out.failure);
    replies.push_back(std::move(*out.reply));
  }
  return replies;
}

RespValue call(Connection& conn, const Context& ctx, std::string_view scheme,
               const std::string& key, const std::string& step,
               const std::vector<std::string_view>& args) {
  return std::move(call_many(conn, ctx, scheme, key, step, {args}).front());
}

}  // namespace dlock::detail::redis
