#include "dlock/lease.hpp"

#include <utility>

#include "core/backend.hpp"
#include "core/lease_state.hpp"
#include "core/reentry.hpp"
#include "dlock/error.hpp"

namespace dlock {
namespace {
const std::string kEmpty;

detail::LeaseState& need(const std::shared_ptr<detail::LeaseState>& s, const char* step) {
  if (!s) throw Error(errc::not_held, "", "", step, "empty lease");
  return *s;
}
}  // namespace

Lease::Lease() noexcept = default;
Lease::Lease(std::shared_ptr<detail::LeaseState> state,
             std::shared_ptr<detail::Reentry> reentry) noexcept
    : state_(std::move(state)), reentry_(std::move(reentry)) {}
Lease::Lease(Lease&& other) noexcept
    : state_(std::move(other.state_)),
      reentry_(std::move(other.reentry_)),
      released_share_(std::exchange(other.released_share_, false)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    reentry_ = std::move(other.reentry_);
    released_share_ = std::exchange(other.released_share_, false);
  }
  return *this;
}

Lease::~Lease() { release(Context::with_timeout(detail::kCleanupTimeout)); }

const std::string& Lease::key() const noexcept { return state_ ? state_->key() : kEmpty; }
std::uint64_t Lease::fencing_token() const noexcept { return state_ ? state_->fencing_token() : 0; }
const std::string& Lease::token() const noexcept { return state_ ? state_->token() : kEmpty; }
Lease::clock::time_point Lease::acquired_at() const noexcept {
  return state_ ? state_->acquired_at() : clock::time_point{};
}
Lease::clock::time_point Lease::valid_until() const noexcept {
  return state_ ? state_->valid_until() : clock::time_point{};
}
std::chrono::milliseconds Lease::ttl() const noexcept {
  return state_ ? state_->ttl() : std::chrono::milliseconds{0};
}
bool Lease::held() const noexcept { return state_ && !released_share_ && state_->held(); }
LockMode Lease::mode() const noexcept { return state_ ? state_->mode() : LockMode{}; }

void Lease::renew(const Context& ctx, std::chrono::milliseconds ttl) {
  need(state_, "renew").renew(ctx, ttl);
}

void Lease::renew() {
  auto& s = need(state_, "renew");
  auto ttl = s.ttl();
  s.renew(Context::with_timeout(ttl), ttl);
}

ReleaseResult Lease::release(const Context& ctx) noexcept {
  if (!state_ || released_share_) return {ReleaseStatus::already_released, {}};
  if (reentry_) {
    auto share = std::move(reentry_);
    if (!share->leave()) {  // Other leases of the owner still hold the grant.
      released_share_ = true;
      return {ReleaseStatus::released, {}};
    }
  }
  return state_->release(ctx);
}

void Lease::downgrade(const Context& ctx) { need(state_, "downgrade").downgrade(ctx); }

std::stop_token Lease::lost_token() const noexcept {
  return state_ ? state_->lost_token() : std::stop_token{};
}
bool Lease::lost() const noexcept { return state_ && state_->lost(); }

void Lease::on_lost(std::function<void(const LossInfo&)> cb) {
  need(state_, "on_lost").on_lost(std::move(cb));
}

bool Lease::at_risk() const noexcept { return state_ && state_->at_risk(); }

std::stop_token Lease::at_risk_token() const noexcept {
  return state_ ? state_->at_risk_token() : std::stop_token{};
}

void Lease::on_at_risk(std::function<void(const RiskInfo&)> cb) {
  need(state_, "on_at_risk").on_at_risk(std::move(cb));
}

void Lease::on_recovered(std::function<void(const RiskInfo&)> cb) {
  need(state_, "on_recovered").on_recovered(std::move(cb));
}

void Lease::set_auto_renew(bool on, std::chrono::milliseconds interval) {
  need(state_, "auto_renew").set_auto_renew(on, interval);
}

}  // namespace dlock
