// Store-reported loss on Redis: every held grant listens on its lock's "revoked" channel, on
// which a force release publishes the token it deleted. The message reaches the holder's
// store object within one round trip, and the grant's loss signal fires at once instead of
// at its next renewal. One subscription per lock (reference counted by this store object's
// grants of it); the SUBSCRIBE goes out without waiting for its confirmation, so a force
// release in the first round trip of a grant is caught by the renewal, as before.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "redis/subscriber.hpp"

namespace dlock::detail {
class GrantState;
}

namespace dlock::detail::redis {

class Revocations : public std::enable_shared_from_this<Revocations> {
 public:
  /// Unregisters its grant on destruction: after that, the grant is never reported.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(std::weak_ptr<Revocations> hub, std::string channel, std::string token)
        : hub_(std::move(hub)), channel_(std::move(channel)), token_(std::move(token)) {}
    Ticket(Ticket&&) = default;
    Ticket& operator=(Ticket&&) = default;  // Only into an empty ticket.

    ~Ticket();

   private:
    std::weak_ptr<Revocations> hub_;
    std::string channel_, token_;
  };

  /// Reports `grant` lost when `channel` (on `sub`) carries `token`. The grant must outlive
  /// the returned ticket. Never blocks, never throws for server trouble.
  Ticket add(Subscriber& sub, const std::string& channel, const std::string& token,
             GrantState& grant);
  /// Stops every report (the store closes); later tickets unregister nothing.
  void close() noexcept;

 private:
  struct Listened {
    Subscriber* sub = nullptr;
    std::shared_ptr<Subscriber::Channel> channel;
    std::map<std::string, GrantState*> grants;  // token -> grant
  };
  void remove(const std::string& channel, const std::string& token) noexcept;
  void revoked(const std::string& channel, const std::string& token) noexcept;

  std::mutex mu_;
  std::map<std::string, Listened> by_channel_;
  bool closed_ = false;
};

}  // namespace dlock::detail::redis
