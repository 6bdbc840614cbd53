// The Sentinel group's shared order of sentinels (connection_options.hpp). The lookup itself
// is a phase of the connection state machine (connection_fsm.cpp), over dlock's own client.
#include <algorithm>

#include "redis/connection_options.hpp"

namespace dlock::detail::redis {

Sentinels::Sentinels(std::vector<Address> sentinels, std::string master, std::string user,
                     std::string password)
    : sentinels_(std::move(sentinels)),
      master_(std::move(master)),
      user_(std::move(user)),
      password_(std::move(password)) {}

std::vector<Address> Sentinels::order() const {
  std::lock_guard lk(mu_);
  return sentinels_;
}

void Sentinels::answered(const Address& who) {
  std::lock_guard lk(mu_);
  auto it = std::find(sentinels_.begin(), sentinels_.end(), who);
  if (it != sentinels_.end()) std::rotate(sentinels_.begin(), it, it + 1);
}

}  // namespace dlock::detail::redis
