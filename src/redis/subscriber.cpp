#include "redis/subscriber.hpp"

namespace dlock::detail::redis {
namespace {

bool is_message(const RespValue& v) {
  return v.type == RespValue::Type::array && v.elements.size() == 3 &&
         v.elements[0].type == RespValue::Type::string && v.elements[0].str == "message";
}

}  // namespace

Subscriber::Subscriber(asio::io_context& io, ConnectionOptions options)
    : state_(std::make_shared<State>()) {
  options.subscriber = true;
  std::weak_ptr<State> weak = state_;
  auto on_message = [weak](RespValue&& msg) {
    auto st = weak.lock();
    if (!st) return;
    std::lock_guard lk(st->mu);
    auto it = st->channels.find(msg.elements[1].str);
    if (it == st->channels.end()) return;
    it->second->version++;
    it->second->changed.notify_all();
  };
  auto on_lost = [weak] {
    auto st = weak.lock();
    if (!st) return;
    std::lock_guard lk(st->mu);
    for (auto& [name, ch] : st->channels) {
      ch->confirmed = false;
      ch->version++;  // A release may have been published while we were away: retry now.
      ch->changed.notify_all();
      if (!ch->pending && !ch->refused) send_subscribe(st, ch);
    }
  };
  state_->conn = Connection::create(io, std::move(options), is_message, on_message, on_lost);
}

Subscriber::~Subscriber() { close(); }

void Subscriber::send_subscribe(const std::shared_ptr<State>& st,
                                const std::shared_ptr<Channel>& ch) {
  if (st->closed) return;
  ch->pending = true;
  std::weak_ptr<State> weak = st;
  st->conn->submit(format_command({"SUBSCRIBE", ch->name}), [weak, ch](Outcome&& out) {
    auto st = weak.lock();
    if (!st) return;
    std::lock_guard lk(st->mu);
    ch->pending = false;
    auto it = st->channels.find(ch->name);
    const bool wanted = it != st->channels.end() && it->second == ch && !st->closed;
    if (out.reply && !out.reply->is_error()) {
      ch->confirmed = true;
    } else {
      ch->confirmed = false;
      ch->refused = out.reply.has_value();
      ch->version++;
      // A lost connection: subscribe again (the connection reconnects with backoff).
      if (wanted && !ch->refused) send_subscribe(st, ch);
    }
    ch->changed.notify_all();
  });
}

std::shared_ptr<Subscriber::Channel> Subscriber::subscribe(
    const std::string& channel, std::chrono::steady_clock::time_point deadline,
    const std::stop_token& stop) {
  std::unique_lock lk(state_->mu);
  auto& slot = state_->channels[channel];
  if (!slot) {
    slot = std::make_shared<Channel>();
    slot->name = channel;
    send_subscribe(state_, slot);
  }
  auto ch = slot;
  ch->refs++;
  ch->changed.wait_until(lk, stop, deadline,
                         [&] { return ch->confirmed || ch->refused || state_->closed; });
  return ch;
}

void Subscriber::unsubscribe(const std::shared_ptr<Channel>& ch) noexcept {
  try {
    std::lock_guard lk(state_->mu);
    if (--ch->refs > 0) return;
    auto it = state_->channels.find(ch->name);
    if (it != state_->channels.end() && it->second == ch) state_->channels.erase(it);
    if (!state_->closed)
      state_->conn->submit(format_command({"UNSUBSCRIBE", ch->name}), [](Outcome&&) {});
  } catch (...) {
    // Out of memory while formatting: the subscription lingers until reconnect; harmless.
  }
}

std::uint64_t Subscriber::version(const Channel& ch) {
  std::lock_guard lk(state_->mu);
  return ch.version;
}

bool Subscriber::wait_change(Channel& ch, std::uint64_t seen,
                             std::chrono::steady_clock::time_point until,
                             const std::stop_token& stop) {
  std::unique_lock lk(state_->mu);
  return ch.changed.wait_until(lk, stop, until, [&] { return ch.version != seen; });
}

void Subscriber::close() noexcept {
  std::lock_guard lk(state_->mu);
  if (state_->closed) return;
  state_->closed = true;
  state_->conn->close();
  for (auto& [name, ch] : state_->channels) ch->changed.notify_all();
}

}  // namespace dlock::detail::redis
