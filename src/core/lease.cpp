#include "dlock/lease.hpp"

#include "core/lease_state.hpp"
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
Lease::Lease(std::shared_ptr<detail::LeaseState> state) noexcept : state_(std::move(state)) {}
Lease::Lease(Lease&& other) noexcept = default;

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

Lease::~Lease() { release(Context::with_timeout(std::chrono::seconds(5))); }

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
bool Lease::held() const noexcept { return state_ && state_->held(); }

void Lease::renew(const Context& ctx, std::chrono::milliseconds ttl) {
  need(state_, "renew").renew(ctx, ttl);
}

void Lease::renew() {
  auto& s = need(state_, "renew");
  auto ttl = s.ttl();
  s.renew(Context::with_timeout(ttl), ttl);
}

ReleaseResult Lease::release(const Context& ctx) noexcept {
  if (!state_) return {ReleaseStatus::already_released, {}};
  return state_->release(ctx);
}

std::stop_token Lease::lost_token() const noexcept {
  return state_ ? state_->lost_token() : std::stop_token{};
}
bool Lease::lost() const noexcept { return state_ && state_->lost(); }

void Lease::on_lost(std::function<void(const LossInfo&)> cb) {
  need(state_, "on_lost").on_lost(std::move(cb));
}

void Lease::set_auto_renew(bool on, std::chrono::milliseconds interval) {
  need(state_, "auto_renew").set_auto_renew(on, interval);
}

}  // namespace dlock
