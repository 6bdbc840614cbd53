#include "redis/sentinel_watch.hpp"

#include <asio.hpp>
#include <mutex>

namespace dlock::detail::redis {
namespace {

constexpr const char* kChannel = "+switch-master";

bool is_switch_message(const RespValue& v) {
  return v.type == RespValue::Type::array && v.elements.size() == 3 &&
         v.elements[0].str == "message" && v.elements[1].str == kChannel;
}

}  // namespace

// Everything but `close` runs on the I/O thread.
struct SentinelWatch::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io, ConnectionOptions o, std::vector<Address> s, std::string m,
        std::function<void()> f)
      : io(io),
        options(std::move(o)),
        sentinels(std::move(s)),
        master(std::move(m)),
        on_switch(std::move(f)),
        retry_timer(io) {}

  void start() {
    if (is_closed() || sentinels.empty()) return;
    ConnectionOptions o = options;
    o.host = sentinels[next].host;
    o.port = sentinels[next].port;
    o.subscriber = true;
    o.db = 0;
    o.sentinels.reset();  // With TLS (rediss+sentinel), the sentinels are reached over TLS.
    std::weak_ptr<State> weak = weak_from_this();
    auto on_message = [weak](RespValue&& msg) {
      // "<master name> <old ip> <old port> <new ip> <new port>"
      auto self = weak.lock();
      const std::string& text = msg.elements[2].str;
      if (self && !self->is_closed() && text.starts_with(self->master + " ")) self->on_switch();
    };
    auto on_lost = [weak] {
      if (auto self = weak.lock()) self->retry_later();
    };
    auto c = PushConnection::create(io, std::move(o), is_switch_message, on_message, on_lost);
    {
      std::lock_guard lk(mu);
      if (closed) return;
      conn = c;
    }
    c->submit(format_command({"SUBSCRIBE", kChannel}), [weak](Outcome&& out) {
      auto self = weak.lock();
      if (self && (!out.ok() || out->is_error())) self->retry_later();
    });
  }

  // This sentinel failed or dropped us: the next one, after a pause.
  void retry_later() {
    std::shared_ptr<PushConnection> old;
    {
      std::lock_guard lk(mu);
      if (closed) return;
      old = std::move(conn);
    }
    if (old) old->close();
    next = (next + 1) % sentinels.size();
    retry_timer.expires_after(std::chrono::seconds(1));
    retry_timer.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->start();
    });
  }

  asio::io_context& io;
  const ConnectionOptions options;
  const std::vector<Address> sentinels;
  const std::string master;
  const std::function<void()> on_switch;
  asio::steady_timer retry_timer;
  std::size_t next = 0;

  bool is_closed() {
    std::lock_guard lk(mu);
    return closed;
  }

  // Shared with close(), which runs on the caller's thread: the connection must be closed
  // before the I/O thread stops, or its pending handshake handlers (which hold it) leak.
  std::mutex mu;
  std::shared_ptr<PushConnection> conn;
  bool closed = false;
};

SentinelWatch::SentinelWatch(asio::io_context& io, ConnectionOptions options,
                             std::vector<Address> sentinels, std::string master,
                             std::function<void()> on_switch)
    : state_(std::make_shared<State>(io, std::move(options), std::move(sentinels),
                                     std::move(master), std::move(on_switch))) {
  asio::post(io, [st = state_] { st->start(); });
}

SentinelWatch::~SentinelWatch() { close(); }

void SentinelWatch::close() noexcept {
  std::shared_ptr<PushConnection> conn;
  {
    std::lock_guard lk(state_->mu);
    if (state_->closed) return;
    state_->closed = true;
    conn = std::move(state_->conn);
  }
  // From this thread, so that its drop is queued before the store stops its I/O thread.
  if (conn) conn->close();
  try {
    asio::post(state_->io, [st = state_] { st->retry_timer.cancel(); });
  } catch (...) {
  }
}

}  // namespace dlock::detail::redis
