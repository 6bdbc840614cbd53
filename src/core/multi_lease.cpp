#include "dlock/multi_lease.hpp"

#include <algorithm>

#include "core/backend.hpp"

namespace dlock {

MultiLease::MultiLease() noexcept = default;

MultiLease::MultiLease(std::vector<Lease> leases)
    : leases_(std::move(leases)), lost_(std::make_shared<std::stop_source>()) {
  for (auto& l : leases_) {
    // A weak link: the callback may run after the group is gone.
    l.on_lost([weak = std::weak_ptr<std::stop_source>(lost_)](const LossInfo&) {
      if (auto s = weak.lock()) s->request_stop();
    });
  }
}

MultiLease::MultiLease(MultiLease&&) noexcept = default;

MultiLease& MultiLease::operator=(MultiLease&& other) noexcept {
  if (this != &other) {
    release();
    leases_ = std::move(other.leases_);
    lost_ = std::move(other.lost_);
  }
  return *this;
}

MultiLease::~MultiLease() { release(Context::with_timeout(detail::kCleanupTimeout)); }

bool MultiLease::held() const noexcept {
  return !leases_.empty() &&
         std::all_of(leases_.begin(), leases_.end(), [](const Lease& l) { return l.held(); });
}

std::stop_token MultiLease::lost_token() const noexcept {
  return lost_ ? lost_->get_token() : std::stop_token{};
}

ReleaseResult MultiLease::release(const Context& ctx) noexcept {
  ReleaseResult out{ReleaseStatus::already_released, {}};
  bool first = true;
  // In reverse order of acquisition, like nested scopes.
  for (auto it = leases_.rbegin(); it != leases_.rend(); ++it) {
    auto r = it->release(ctx);
    if (r.status == ReleaseStatus::already_released) continue;
    if (first || (out.status == ReleaseStatus::released && !r)) out = r;
    first = false;
  }
  return out;
}

}  // namespace dlock
