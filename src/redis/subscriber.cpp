#include "redis/subscriber.hpp"

#include <algorithm>
#include <vector>

namespace dlock::detail::redis {
namespace {

bool is_message(const RespValue& v) {
  return v.type == RespValue::Type::array && v.elements.size() == 3 &&
         v.elements[0].type == RespValue::Type::string &&
         (v.elements[0].str == "message" || v.elements[0].str == "smessage");
}

}  // namespace

Subscriber::Subscriber(asio::io_context& io, ConnectionOptions options, bool sharded)
    : state_(std::make_shared<State>()) {
  state_->sharded = sharded;
  options.subscriber = true;
  std::weak_ptr<State> weak = state_;
  auto on_message = [weak](RespValue&& msg) {
    auto st = weak.lock();
    if (!st) return;
    std::function<void(const std::string&)> listener;
    {
      std::lock_guard lk(st->mu);
      auto it = st->channels.find(msg.elements[1].str);
      if (it == st->channels.end()) return;
      it->second->version++;
      it->second->last_message = msg.elements[2].str;
      it->second->changed.notify_all();
      listener = it->second->on_message;
    }
    if (listener) listener(msg.elements[2].str);
  };
  auto on_lost = [weak] {
    auto st = weak.lock();
    if (!st) return;
    std::lock_guard lk(st->mu);
    // Idle channels are not worth re-subscribing.
    std::erase_if(st->channels, [](auto& kv) { return kv.second->refs == 0; });
    st->idle = 0;
    for (auto& [name, ch] : st->channels) {
      ch->confirmed = false;
      ch->version++;  // A release may have been published while we were away: retry now.
      ch->changed.notify_all();
      if (!ch->pending && !ch->refused) send_subscribe(st, ch);
    }
  };
  state_->conn = PushConnection::create(io, std::move(options), is_message, on_message, on_lost);
}

Subscriber::~Subscriber() { close(); }

void Subscriber::send_subscribe(const std::shared_ptr<State>& st,
                                const std::shared_ptr<Channel>& ch) {
  if (st->closed) return;
  ch->pending = true;
  std::weak_ptr<State> weak = st;
  st->conn->submit(format_command({st->sharded ? "SSUBSCRIBE" : "SUBSCRIBE", ch->name}),
                   [weak, ch](Outcome&& out) {
                     auto st = weak.lock();
                     if (!st) return;
                     std::lock_guard lk(st->mu);
                     ch->pending = false;
                     auto it = st->channels.find(ch->name);
                     const bool wanted =
                         it != st->channels.end() && it->second == ch && !st->closed;
                     if (out.ok() && !out->is_error()) {
                       ch->confirmed = true;
                     } else {
                       ch->confirmed = false;
                       ch->refused = out.ok();
                       ch->version++;
                       // A lost connection: subscribe again (the connection reconnects with
                       // backoff).
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
  if (ch->refs++ == 0 && ch->idle_since != std::chrono::steady_clock::time_point{}) {
    state_->idle--;
  }
  ch->changed.wait_until(lk, stop, deadline,
                         [&] { return ch->confirmed || ch->refused || state_->closed; });
  return ch;
}

std::shared_ptr<Subscriber::Channel> Subscriber::listen(
    const std::string& channel, std::function<void(const std::string&)> on_message) {
  std::lock_guard lk(state_->mu);
  auto& slot = state_->channels[channel];
  if (!slot) {
    slot = std::make_shared<Channel>();
    slot->name = channel;
    send_subscribe(state_, slot);
  }
  if (!slot->on_message) slot->on_message = std::move(on_message);
  if (slot->refs++ == 0 && slot->idle_since != std::chrono::steady_clock::time_point{}) {
    state_->idle--;
  }
  return slot;
}

std::shared_ptr<Subscriber::Channel> Subscriber::try_join(const std::string& channel) {
  std::lock_guard lk(state_->mu);
  auto it = state_->channels.find(channel);
  if (it == state_->channels.end() || !it->second->confirmed) return nullptr;
  if (it->second->refs++ == 0) state_->idle--;
  return it->second;
}

void Subscriber::unsubscribe(const std::shared_ptr<Channel>& ch) noexcept {
  std::lock_guard lk(state_->mu);
  if (--ch->refs > 0) return;
  auto it = state_->channels.find(ch->name);
  if (it == state_->channels.end() || it->second != ch) return;
  ch->idle_since = std::chrono::steady_clock::now();
  state_->idle++;
  trim_idle(*state_);
}

void Subscriber::trim_idle(State& st) {
  // Up to 256 idle subscriptions are kept; beyond that, the oldest half goes.
  constexpr std::size_t kMaxIdle = 256;
  if (st.idle <= kMaxIdle) return;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> idle;
  for (auto& [name, ch] : st.channels) {
    if (ch->refs == 0) idle.emplace_back(ch->idle_since, name);
  }
  std::sort(idle.begin(), idle.end());
  idle.resize(idle.size() / 2);
  for (auto& [since, name] : idle) {
    st.channels.erase(name);
    st.idle--;
    if (st.closed) continue;
    try {
      st.conn->submit(format_command({st.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", name}),
                      [](Outcome&&) {});
    } catch (...) {
      // Out of memory while formatting: the subscription lingers until reconnect; harmless.
    }
  }
}

std::uint64_t Subscriber::version(const Channel& ch) {
  std::lock_guard lk(state_->mu);
  return ch.version;
}

std::string Subscriber::last_message(const Channel& ch) {
  std::lock_guard lk(state_->mu);
  return ch.last_message;
}

bool Subscriber::wait_change(Channel& ch, std::uint64_t seen,
                             std::chrono::steady_clock::time_point until,
                             const std::stop_token& stop) {
  std::unique_lock lk(state_->mu);
  return ch.changed.wait_until(lk, stop, until, [&] { return ch.version != seen; });
}

void Subscriber::reset() noexcept { state_->conn->reset(); }

void Subscriber::close() noexcept {
  std::lock_guard lk(state_->mu);
  if (state_->closed) return;
  state_->closed = true;
  state_->conn->close();
  for (auto& [name, ch] : state_->channels) ch->changed.notify_all();
}

}  // namespace dlock::detail::redis
