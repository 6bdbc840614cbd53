#include "core/lease_state.hpp"

#include <algorithm>

#include "core/fork_guard.hpp"
#include "core/renewal_scheduler.hpp"
#include "core/validate.hpp"
#include "dlock/error.hpp"

namespace dlock::detail {

using std::chrono::milliseconds;

CoreShared::~CoreShared() {
  if (forked_away(pid)) new std::shared_ptr<Backend>(std::move(backend));  // Leak on purpose.
}

milliseconds drift_margin(milliseconds ttl) { return ttl / 100 + milliseconds(2); }

std::shared_ptr<LeaseState> LeaseState::create(std::shared_ptr<CoreShared> core, std::string key,
                                               std::string token, std::uint64_t fencing,
                                               milliseconds ttl, clock::time_point sent_at,
                                               const LockOptions& opts) {
  std::shared_ptr<LeaseState> s(
      new LeaseState(core, std::move(key), std::move(token), fencing, ttl, sent_at));
  {
    std::lock_guard lk(core->live_mu);
    core->live[s->token_] = s.get();
  }
  core->stats.held++;
  if (opts.on_lost) s->callbacks_.push_back(opts.on_lost);
  std::lock_guard lk(s->mu_);
  s->auto_renew_ = opts.auto_renew;
  s->interval_ = opts.renew_interval;
  s->reschedule_locked(sent_at);
  return s;
}

LeaseState::LeaseState(std::shared_ptr<CoreShared> core, std::string key, std::string token,
                       std::uint64_t fencing, milliseconds ttl, clock::time_point sent_at)
    : core_(std::move(core)),
      key_(std::move(key)),
      token_(std::move(token)),
      fencing_(fencing),
      acquired_at_(sent_at),
      valid_until_(sent_at + ttl - drift_margin(ttl)),
      ttl_(ttl) {}

LeaseState::~LeaseState() {
  if (forked_away(core_->pid)) return;  // Never touch a mutex a parent thread may have held.
  std::lock_guard lk(core_->live_mu);
  auto it = core_->live.find(token_);
  if (it != core_->live.end() && it->second == this) core_->live.erase(it);
}

LeaseState::clock::time_point LeaseState::valid_until() const {
  std::lock_guard lk(mu_);
  return valid_until_;
}

milliseconds LeaseState::ttl() const {
  std::lock_guard lk(mu_);
  return ttl_;
}

bool LeaseState::held() const {
  if (forked_away(core_->pid)) return false;
  std::lock_guard lk(mu_);
  return phase_ == Phase::held && clock::now() < valid_until_;
}

milliseconds LeaseState::interval_locked() const {
  return interval_.count() > 0 ? interval_ : std::max(milliseconds(1), ttl_ / 3);
}

void LeaseState::reschedule_locked(clock::time_point from) {
  ++generation_;
  auto due = auto_renew_ ? std::min(from + interval_locked(), valid_until_) : valid_until_;
  // A renewal may go up to 1/8 of its interval (at most 20 ms) early, so that renewals due
  // close together share a batch; it still leaves most of the validity as margin.
  const auto early = auto_renew_ && due < valid_until_
                         ? std::min<clock::duration>(interval_locked() / 8, milliseconds(20))
                         : clock::duration{};
  RenewalScheduler::instance().schedule(weak_from_this(), due, generation_, batchable(), early);
}

int LeaseState::extend_once(const Context& ctx, milliseconds ttl, std::error_code& err) {
  int result;
  try {
    result = core_->backend->extend(ctx, key_, token_, ttl) ? 1 : 0;
  } catch (const std::system_error& e) {
    err = e.code();
    result = -1;
  } catch (...) {
    err = make_error_code(errc::protocol_error);
    result = -1;
  }
  return result;
}

void LeaseState::renew(const Context& ctx, milliseconds ttl) {
  if (forked_away(core_->pid)) {
    throw Error(errc::unsupported, core_->scheme, key_, "renew", "lease used after fork()");
  }
  ttl = validate_ttl(ttl, core_->backend->capabilities(), core_->scheme, key_, "renew");
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held) {
      throw Error(errc::not_held, core_->scheme, key_, "renew",
                  phase_ == Phase::released ? "already released" : "the lock was lost");
    }
    ++renewing_;
  }
  auto sent = clock::now();
  std::error_code err;
  int r = extend_once(ctx, ttl, err);
  std::unique_lock lk(mu_);
  --renewing_;
  cv_.notify_all();
  if (r == 1) {
    core_->stats.renewals++;
    if (phase_ == Phase::held) {
      ttl_ = ttl;
      valid_until_ = sent + ttl - drift_margin(ttl);
      last_error_ = {};
      reschedule_locked(sent);
    }
    return;
  }
  core_->stats.renewal_failures++;
  if (r == 0) {
    lk.unlock();
    mark_lost(LossReason::rejected, make_error_code(errc::not_held));
    throw Error(errc::not_held, core_->scheme, key_, "renew",
                "the store no longer holds this grant (expired or taken over)");
  }
  last_error_ = err;
  throw Error(err, core_->scheme, key_, "renew");
}

ReleaseResult LeaseState::release(const Context& ctx) noexcept {
  if (forked_away(core_->pid)) return {ReleaseStatus::failed, make_error_code(errc::unsupported)};
  {
    std::unique_lock lk(mu_);
    if (phase_ == Phase::released) return {ReleaseStatus::already_released, {}};
    if (phase_ == Phase::held) core_->stats.held--;
    phase_ = Phase::released;
    ++generation_;  // Invalidates any scheduled tick.
    // Synchronous cancellation: wait for an in-flight renewal to finish before deleting, so
    // no renewal of this grant runs after release returns.
    cv_.wait(lk, [&] { return renewing_ == 0; });
  }
  cv_.notify_all();
  {
    std::lock_guard lk(core_->live_mu);
    auto it = core_->live.find(token_);
    if (it != core_->live.end() && it->second == this) core_->live.erase(it);
  }
  try {
    if (core_->backend->release(ctx, key_, token_)) {
      core_->stats.releases++;
      return {ReleaseStatus::released, {}};
    }
    core_->stats.releases_not_held++;
    return {ReleaseStatus::not_held, make_error_code(errc::not_held)};
  } catch (const std::system_error& e) {
    return {ReleaseStatus::failed, e.code()};
  } catch (...) {
    return {ReleaseStatus::failed, make_error_code(errc::protocol_error)};
  }
}

void LeaseState::on_lost(std::function<void(const LossInfo&)> cb) {
  if (!cb) return;
  std::unique_lock lk(mu_);
  if (!was_lost_) {
    if (phase_ == Phase::held) callbacks_.push_back(std::move(cb));  // Released: never fires.
    return;
  }
  LossInfo info{key_, fencing_, LossReason::rejected, last_error_};
  lk.unlock();
  cb(info);
}

void LeaseState::set_auto_renew(bool on, milliseconds interval) {
  if (interval.count() < 0 || (interval.count() > 0 && interval >= ttl())) {
    throw Error(errc::invalid_argument, core_->scheme, key_, "auto_renew",
                "interval must be >= 0 and shorter than the TTL");
  }
  std::lock_guard lk(mu_);
  if (phase_ != Phase::held) return;
  auto_renew_ = on;
  interval_ = interval;
  reschedule_locked(clock::now());
}

std::pair<bool, milliseconds> LeaseState::auto_renew_setting() const {
  std::lock_guard lk(mu_);
  return {auto_renew_, interval_};
}

bool LeaseState::lost() const {
  std::lock_guard lk(mu_);
  return was_lost_;
}

std::stop_token LeaseState::lost_token() const {
  std::lock_guard lk(mu_);
  if (!lost_src_.stop_possible()) {
    lost_src_ = std::stop_source();
    if (was_lost_) lost_src_.request_stop();
  }
  return lost_src_.get_token();
}

void LeaseState::mark_lost(LossReason reason, std::error_code error) noexcept {
  std::vector<std::function<void(const LossInfo&)>> cbs;
  std::stop_source src{std::nostopstate};
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held) return;
    phase_ = Phase::lost;
    was_lost_ = true;
    ++generation_;
    cbs.swap(callbacks_);
    src = lost_src_;  // A token made after this sees phase_ == lost and stops itself.
    if (!error) error = last_error_;
  }
  cv_.notify_all();
  core_->stats.held--;
  core_->stats.losses++;
  if (src.stop_possible()) src.request_stop();
  LossInfo info{key_, fencing_, reason, error};
  for (auto& cb : cbs) {
    try {
      cb(info);
    } catch (...) {
      // A user callback's exception must not cross into the scheduler thread.
    }
  }
}

bool LeaseState::wait_ended(const Context& ctx, std::stop_token stop) {
  // Both stop tokens wake the wait by notifying under the lock (no lost wake-up).
  auto wake = [this] {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  };
  std::stop_callback on_ctx(ctx.stop_token(), wake);
  std::stop_callback on_stop(stop, wake);
  std::unique_lock lk(mu_);
  auto done = [&] {
    return phase_ != Phase::held || stop.stop_requested() || ctx.stop_requested();
  };
  if (ctx.has_deadline()) {
    cv_.wait_until(lk, ctx.deadline(), done);
  } else {
    cv_.wait(lk, done);
  }
  return phase_ != Phase::held;
}

std::optional<LeaseState::RenewalPlan> LeaseState::begin_tick(std::uint64_t generation) noexcept {
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held || generation != generation_) return std::nullopt;
    auto now = clock::now();
    if (now < valid_until_ && !auto_renew_) {
      reschedule_locked(now);
      return std::nullopt;
    }
    if (now < valid_until_) {
      ++renewing_;
      return RenewalPlan{ttl_, std::min(valid_until_, now + interval_locked())};
    }
  }
  mark_lost(LossReason::expired, {});  // Validity ended without a successful renewal.
  return std::nullopt;
}

void LeaseState::end_tick(const RenewalPlan& plan, clock::time_point sent, int result,
                          std::error_code err) noexcept {
  {
    std::unique_lock lk(mu_);
    --renewing_;
    cv_.notify_all();
    if (phase_ != Phase::held) return;
    if (result == 1) {
      core_->stats.renewals++;
      valid_until_ = sent + plan.ttl - drift_margin(plan.ttl);
      last_error_ = {};
      reschedule_locked(sent);
      return;
    }
    core_->stats.renewal_failures++;
    if (result == -1) {
      // Store unreachable: retry soon, and the tick at valid_until fires the loss.
      last_error_ = err;
      ++generation_;
      auto retry = std::clamp(interval_locked() / 4, milliseconds(10), milliseconds(1000));
      RenewalScheduler::instance().schedule(
          weak_from_this(), std::min(clock::now() + retry, valid_until_), generation_, batchable());
      return;
    }
  }
  mark_lost(LossReason::rejected, make_error_code(errc::not_held));
}

void LeaseState::tick(std::uint64_t generation) noexcept {
  auto plan = begin_tick(generation);
  if (!plan) return;
  auto sent = clock::now();
  std::error_code err;
  int r = extend_once(Context::with_deadline(plan->deadline), plan->ttl, err);
  end_tick(*plan, sent, r, err);
}

void LeaseState::tick_together(
    std::vector<std::pair<std::shared_ptr<LeaseState>, std::uint64_t>>& due) noexcept {
  struct Item {
    std::shared_ptr<LeaseState> lease;
    RenewalPlan plan;
  };
  std::vector<Item> items;
  items.reserve(due.size());
  for (auto& [lease, generation] : due) {
    if (auto plan = lease->begin_tick(generation)) items.push_back({lease, *plan});
  }
  // One batch per store object.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.lease->core_.get() < b.lease->core_.get();
  });
  for (std::size_t first = 0; first < items.size();) {
    std::size_t end = first;
    auto deadline = clock::time_point::max();
    std::vector<Backend::Extension> batch;
    while (end < items.size() && items[end].lease->core_ == items[first].lease->core_) {
      const Item& it = items[end++];
      batch.push_back({it.lease->key_, it.lease->token_, it.plan.ttl});
      deadline = std::min(deadline, it.plan.deadline);  // The tightest bound for all.
    }
    const auto sent = clock::now();
    std::vector<Backend::ExtensionResult> results;
    try {
      results =
          items[first].lease->core_->backend->extend_many(Context::with_deadline(deadline), batch);
    } catch (...) {
    }
    results.resize(batch.size(), {-1, make_error_code(errc::protocol_error)});
    for (std::size_t i = first; i < end; ++i) {
      const auto& r = results[i - first];
      items[i].lease->end_tick(items[i].plan, sent, r.status, r.error);
    }
    first = end;
  }
}

bool LeaseState::batchable() const { return core_->backend->extends_in_batches(); }

}  // namespace dlock::detail
