#include "redis/revocations.hpp"

#include "core/backend.hpp"

namespace dlock::detail::redis {

Revocations::Ticket::~Ticket() {
  if (auto hub = hub_.lock()) hub->remove(channel_, token_);
}

Revocations::Ticket Revocations::add(Subscriber& sub, const std::string& channel,
                                     const std::string& token, GrantState& grant) {
  std::lock_guard lk(mu_);
  if (closed_) return {};
  auto& l = by_channel_[channel];
  if (!l.channel) {
    std::weak_ptr<Revocations> weak = weak_from_this();
    l.sub = &sub;
    // Lock order: ours, then the subscriber's. Its message callback runs without its lock.
    l.channel = sub.listen(channel, [weak, channel](const std::string& message) {
      if (auto hub = weak.lock()) hub->revoked(channel, message);
    });
  }
  l.grants[token] = &grant;
  return Ticket(weak_from_this(), channel, token);
}

void Revocations::remove(const std::string& channel, const std::string& token) noexcept {
  std::lock_guard lk(mu_);
  auto it = by_channel_.find(channel);
  if (it == by_channel_.end()) return;
  it->second.grants.erase(token);
  if (!it->second.grants.empty()) return;
  if (!closed_) it->second.sub->unsubscribe(it->second.channel);
  by_channel_.erase(it);
}

void Revocations::revoked(const std::string& channel, const std::string& token) noexcept {
  std::lock_guard lk(mu_);
  if (closed_) return;
  auto it = by_channel_.find(channel);
  if (it == by_channel_.end()) return;
  auto g = it->second.grants.find(token);
  // Non-blocking; the grant is alive while registered (its ticket unregisters under mu_).
  if (g != it->second.grants.end()) g->second->report_lost(make_error_code(errc::lock_lost));
}

void Revocations::close() noexcept {
  std::lock_guard lk(mu_);
  closed_ = true;
  by_channel_.clear();
}

}  // namespace dlock::detail::redis
