#include "core/lease_state.hpp"

#include <algorithm>

#include "core/fork_guard.hpp"
#include "core/logging.hpp"
#include "core/renewal_scheduler.hpp"
#include "core/validate.hpp"
#include "dlock/error.hpp"

namespace dlock::detail {

using std::chrono::milliseconds;

// ---- GrantState: the store's handle back to core ----

void GrantState::attach(std::weak_ptr<LeaseState> lease) noexcept {
  std::error_code early;
  std::shared_ptr<LeaseState> s;
  {
    std::lock_guard lk(mu_);
    lease_ = std::move(lease);
    attached_ = true;
    early = early_loss_;
    if (early) s = lease_.lock();
  }
  if (s) LeaseState::store_reported(std::move(s), early);
}

void GrantState::report_lost(std::error_code why) noexcept {
  if (!why) why = make_error_code(errc::lock_lost);
  std::shared_ptr<LeaseState> s;
  {
    std::lock_guard lk(mu_);
    if (!attached_) {
      early_loss_ = why;  // Lost before core made the lease: fired by attach().
      return;
    }
    s = lease_.lock();
  }
  if (s) LeaseState::store_reported(std::move(s), why);
}

std::shared_ptr<LeaseState> GrantState::lease() noexcept {
  std::lock_guard lk(mu_);
  return lease_.lock();
}

void GrantState::report_at_risk(std::error_code why) noexcept {
  if (!why) why = make_error_code(errc::unavailable);
  if (auto s = lease()) LeaseState::store_reported_risk(std::move(s), why);
}

void GrantState::report_recovered() noexcept {
  if (auto s = lease()) LeaseState::store_reported_risk(std::move(s), {});
}

// ---- StoreShared ----

StoreShared::StoreShared(std::shared_ptr<Backend> b, const Clock& c, RenewalScheduler& s)
    : backend(std::move(b)),
      scheme(backend->scheme()),
      caps(backend->capabilities()),
      clock(c),
      scheduler(s) {}

StoreShared::~StoreShared() {
  if (forked_away(pid)) new std::shared_ptr<Backend>(std::move(backend));  // Leak on purpose.
}

void StoreShared::check_open(std::string_view key, std::string_view step) const {
  if (forked_away(pid)) {
    throw Error(errc::unsupported, scheme, std::string(key), std::string(step),
                "store used in a child process after fork(); open a new one");
  }
  if (closed) throw Error(errc::closed, scheme, std::string(key), std::string(step));
}

milliseconds drift_margin(milliseconds ttl) { return ttl / 100 + milliseconds(2); }

// ---- LeaseState ----

std::shared_ptr<LeaseState> LeaseState::create(std::shared_ptr<StoreShared> store,
                                               std::unique_ptr<GrantState> grant, GrantInfo info,
                                               const LockOptions& opts) {
  std::shared_ptr<LeaseState> s(new LeaseState(store, std::move(grant), std::move(info)));
  {
    std::lock_guard lk(store->live_mu);
    store->live.insert(s.get());
  }
  store->stats.held++;
  if (opts.on_lost) s->callbacks_.push_back(opts.on_lost);
  if (opts.on_at_risk) s->risk_callbacks_.push_back(opts.on_at_risk);
  if (opts.on_recovered) s->recovered_callbacks_.push_back(opts.on_recovered);
  {
    std::lock_guard lk(s->mu_);
    s->auto_renew_ = opts.auto_renew;
    s->interval_ = opts.renew_interval;
    s->reschedule_locked(s->acquired_at_);
  }
  s->grant_->attach(s);
  return s;
}

LeaseState::LeaseState(std::shared_ptr<StoreShared> store, std::unique_ptr<GrantState> grant,
                       GrantInfo info)
    : store_(std::move(store)),
      grant_(std::move(grant)),
      key_(std::move(info.key)),
      token_(std::move(info.token)),
      fencing_(info.fencing_token),
      acquired_at_(info.sent_at),
      mode_(info.mode),
      valid_until_(info.sent_at + info.ttl - drift_margin(info.ttl)),
      ttl_(info.ttl) {}

LeaseState::~LeaseState() {
  if (forked_away(store_->pid)) {
    // Never touch a mutex a parent thread may have held, nor the store's grant state.
    (void)grant_.release();
    return;
  }
  unregister();
}

void LeaseState::unregister() noexcept {
  std::lock_guard lk(store_->live_mu);
  store_->live.erase(this);
}

LeaseState::clock::time_point LeaseState::valid_until() const {
  std::lock_guard lk(mu_);
  return valid_until_;
}

milliseconds LeaseState::ttl() const {
  std::lock_guard lk(mu_);
  return ttl_;
}

LockMode LeaseState::mode() const {
  std::lock_guard lk(mu_);
  return mode_;
}

void LeaseState::downgrade(const Context& ctx) {
  store_->check_open(key_, "downgrade");
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held) {
      throw Error(errc::not_held, store_->scheme, key_, "downgrade",
                  phase_ == Phase::released ? "already released" : "the lock was lost");
    }
    if (mode_.kind == LockMode::Kind::shared) return;
    if (mode_.kind != LockMode::Kind::exclusive) {
      throw Error(errc::invalid_argument, store_->scheme, key_, "downgrade",
                  "only an exclusive grant can become shared");
    }
    if (!store_->caps.downgrades) {
      throw Error(errc::unsupported, store_->scheme, key_, "downgrade",
                  "this store cannot turn an exclusive grant into a shared one");
    }
  }
  const GrantResult r = store_->backend->downgrade(ctx, *grant_);
  if (r.status == GrantStatus::failed) throw Error(r.error, store_->scheme, key_, "downgrade");
  if (r.status == GrantStatus::not_held) {
    mark_lost(LossReason::rejected, make_error_code(errc::not_held));
    throw Error(errc::not_held, store_->scheme, key_, "downgrade",
                "the store no longer holds this grant (expired or taken over)");
  }
  std::lock_guard lk(mu_);
  mode_ = LockMode::shared();
}

void LeaseState::set_metadata(const Context& ctx, const std::string& metadata) {
  store_->check_open(key_, "proclaim");
  if (!store_->caps.proclaims) {
    throw Error(errc::unsupported, store_->scheme, key_, "proclaim",
                "this store cannot change a held grant's value");
  }
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held || now() >= valid_until_) {
      throw Error(errc::not_held, store_->scheme, key_, "proclaim", "not held");
    }
  }
  const GrantResult r = store_->backend->set_metadata(ctx, *grant_, metadata);
  if (r.status == GrantStatus::failed) throw Error(r.error, store_->scheme, key_, "proclaim");
  if (r.status == GrantStatus::not_held) {
    mark_lost(LossReason::rejected, make_error_code(errc::not_held));
    throw Error(errc::not_held, store_->scheme, key_, "proclaim",
                "the store no longer holds this grant (expired or taken over)");
  }
}

bool LeaseState::held() const {
  if (forked_away(store_->pid)) return false;
  std::lock_guard lk(mu_);
  return phase_ == Phase::held && now() < valid_until_;
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
  store_->scheduler.schedule(weak_from_this(), due, generation_, batchable(), early);
}

void LeaseState::extended_locked(clock::time_point sent, milliseconds ttl) {
  store_->stats.renewals++;
  ttl_ = ttl;
  valid_until_ = sent + ttl - drift_margin(ttl);
  last_error_ = {};
  reschedule_locked(sent);
}

void LeaseState::record_hold() noexcept {
  const auto held = std::chrono::duration_cast<std::chrono::microseconds>(now() - acquired_at_);
  store_->stats.hold_hist.record(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, held.count())));
}

void LeaseState::note(LogLevel level, std::string_view message, std::error_code error,
                      std::initializer_list<LogField> extra) const noexcept {
  log_lock(level, message, {store_->scheme, key_, fencing_}, error, extra);
}

void LeaseState::RiskChange::fire() noexcept {
  log_lock(level, message, {store, info.key, info.fencing_token}, info.error);
  if (stop.stop_possible()) stop.request_stop();
  for (auto& cb : callbacks) {
    try {
      cb(info);
    } catch (...) {
      // A user callback's exception must not cross into a dlock thread.
    }
  }
}

LeaseState::RiskChange LeaseState::enter_risk_locked(std::error_code error) {
  RiskChange c;
  if (at_risk_ || phase_ != Phase::held) return c;
  at_risk_ = true;
  store_->stats.at_risk++;
  c.callbacks = risk_callbacks_;
  c.stop = risk_src_;
  c.info = RiskInfo{key_, fencing_, error, valid_until_};
  c.level = LogLevel::warning;
  c.message = "at risk";
  c.store = store_->scheme;
  return c;
}

LeaseState::RiskChange LeaseState::leave_risk_locked() {
  RiskChange c;
  if (!at_risk_ || phase_ != Phase::held) return c;
  at_risk_ = false;
  store_->stats.recoveries++;
  risk_src_ = std::stop_source(std::nostopstate);  // The next episode gets a fresh token.
  c.callbacks = recovered_callbacks_;
  c.info = RiskInfo{key_, fencing_, {}, valid_until_};
  c.level = LogLevel::info;
  c.message = "recovered";
  c.store = store_->scheme;
  return c;
}

bool LeaseState::at_risk() const {
  std::lock_guard lk(mu_);
  return at_risk_ && phase_ == Phase::held;
}

std::stop_token LeaseState::at_risk_token() const {
  std::lock_guard lk(mu_);
  if (!risk_src_.stop_possible()) {
    risk_src_ = std::stop_source();
    if (at_risk_ || was_lost_) risk_src_.request_stop();
  }
  return risk_src_.get_token();
}

void LeaseState::on_at_risk(std::function<void(const RiskInfo&)> cb) {
  if (!cb) return;
  std::unique_lock lk(mu_);
  if (phase_ != Phase::held) return;
  risk_callbacks_.push_back(cb);
  if (!at_risk_) return;
  RiskInfo info{key_, fencing_, last_error_, valid_until_};
  lk.unlock();
  cb(info);
}

void LeaseState::on_recovered(std::function<void(const RiskInfo&)> cb) {
  if (!cb) return;
  std::lock_guard lk(mu_);
  if (phase_ == Phase::held) recovered_callbacks_.push_back(std::move(cb));
}

void LeaseState::store_reported_risk(std::shared_ptr<LeaseState> self,
                                     std::error_code error) noexcept {
  auto& scheduler = self->store_->scheduler;
  scheduler.post([s = std::move(self), error] {
    RiskChange c;
    {
      std::lock_guard lk(s->mu_);
      c = error ? s->enter_risk_locked(error) : s->leave_risk_locked();
    }
    c.fire();
  });
}

void LeaseState::renew(const Context& ctx, milliseconds ttl) {
  store_->check_open(key_, "renew");
  ttl = validate_ttl(ttl, store_->caps, store_->scheme, key_, "renew");
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held) {
      throw Error(errc::not_held, store_->scheme, key_, "renew",
                  phase_ == Phase::released ? "already released" : "the lock was lost");
    }
    ++renewing_;
  }
  const auto sent = now();
  const GrantResult r = store_->backend->extend(ctx, *grant_, ttl);
  std::unique_lock lk(mu_);
  --renewing_;
  cv_.notify_all();
  if (r.status == GrantStatus::held) {
    if (phase_ != Phase::held) return;
    extended_locked(sent, ttl);
    auto change = leave_risk_locked();
    lk.unlock();
    note(LogLevel::debug, "renewed");
    change.fire();
    return;
  }
  store_->stats.renewal_failures++;
  if (r.status == GrantStatus::not_held) {
    lk.unlock();
    note(LogLevel::warning, "renewal failed", make_error_code(errc::not_held));
    mark_lost(LossReason::rejected, make_error_code(errc::not_held));
    throw Error(errc::not_held, store_->scheme, key_, "renew",
                "the store no longer holds this grant (expired or taken over)");
  }
  last_error_ = r.error;
  auto change = now() < valid_until_ ? enter_risk_locked(r.error) : RiskChange{};
  lk.unlock();
  note(LogLevel::warning, "renewal failed", r.error);
  change.fire();
  throw Error(r.error, store_->scheme, key_, "renew");
}

ReleaseResult LeaseState::release(const Context& ctx) noexcept {
  if (forked_away(store_->pid)) return {ReleaseStatus::failed, make_error_code(errc::unsupported)};
  {
    std::unique_lock lk(mu_);
    if (phase_ == Phase::released) return {ReleaseStatus::already_released, {}};
    if (phase_ == Phase::held) {
      store_->stats.held--;
      record_hold();
    }
    phase_ = Phase::released;
    ++generation_;  // Invalidates any scheduled tick.
    // Synchronous cancellation: wait for an in-flight renewal to finish before deleting, so
    // no renewal of this grant runs after release returns.
    cv_.wait(lk, [&] { return renewing_ == 0; });
  }
  cv_.notify_all();
  unregister();
  if (store_->backend_closed) return {ReleaseStatus::failed, make_error_code(errc::closed)};
  const GrantResult r = store_->backend->release(ctx, *grant_);
  switch (r.status) {
    case GrantStatus::held:
      store_->stats.releases++;
      note(LogLevel::debug, "released");
      return {ReleaseStatus::released, {}};
    case GrantStatus::not_held:
      store_->stats.releases_not_held++;
      note(LogLevel::warning, "release found the lock gone", make_error_code(errc::not_held));
      return {ReleaseStatus::not_held, make_error_code(errc::not_held)};
    case GrantStatus::failed:
      break;
  }
  note(LogLevel::warning, "release failed", r.error);
  return {ReleaseStatus::failed, r.error};
}

void LeaseState::on_lost(std::function<void(const LossInfo&)> cb) {
  if (!cb) return;
  std::unique_lock lk(mu_);
  if (!was_lost_) {
    if (phase_ == Phase::held) callbacks_.push_back(std::move(cb));  // Released: never fires.
    return;
  }
  LossInfo info{key_, fencing_, loss_reason_, last_error_};
  lk.unlock();
  cb(info);
}

void LeaseState::set_auto_renew(bool on, milliseconds interval) {
  if (interval.count() < 0 || (interval.count() > 0 && interval >= ttl())) {
    throw Error(errc::invalid_argument, store_->scheme, key_, "auto_renew",
                "interval must be >= 0 and shorter than the TTL");
  }
  std::lock_guard lk(mu_);
  if (phase_ != Phase::held) return;
  auto_renew_ = on;
  interval_ = interval;
  reschedule_locked(now());
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
  std::stop_source src{std::nostopstate}, risk{std::nostopstate};
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::held) return;
    phase_ = Phase::lost;
    was_lost_ = true;
    loss_reason_ = reason;
    ++generation_;
    cbs.swap(callbacks_);
    src = lost_src_;   // A token made after this sees was_lost_ and stops itself.
    risk = risk_src_;  // At risk ends in the loss: its token stops too.
    risk_callbacks_.clear();
    recovered_callbacks_.clear();
    if (!error) error = last_error_;
    last_error_ = error;
  }
  cv_.notify_all();
  store_->stats.held--;
  record_hold();
  store_->stats.losses++;
  // Logged before the signals, so that a log read after them has the record.
  note(LogLevel::error, "lost", error, {{"reason", std::string(to_string(reason))}});
  if (src.stop_possible()) src.request_stop();
  if (risk.stop_possible()) risk.request_stop();
  LossInfo info{key_, fencing_, reason, error};
  for (auto& cb : cbs) {
    try {
      cb(info);
    } catch (...) {
      // A user callback's exception must not cross into the scheduler thread.
    }
  }
}

void LeaseState::store_reported(std::shared_ptr<LeaseState> self, std::error_code error) noexcept {
  // Callbacks run on a scheduler worker, never on the store's I/O thread.
  auto& scheduler = self->store_->scheduler;
  scheduler.post(
      [self = std::move(self), error] { self->mark_lost(LossReason::store_reported, error); });
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
    const auto t = now();
    if (t < valid_until_ && !auto_renew_) {
      reschedule_locked(t);
      return std::nullopt;
    }
    if (t < valid_until_) {
      ++renewing_;
      return RenewalPlan{ttl_, std::min(valid_until_, t + interval_locked())};
    }
  }
  mark_lost(LossReason::expired, {});  // Validity ended without a successful renewal.
  return std::nullopt;
}

void LeaseState::end_tick(const RenewalPlan& plan, clock::time_point sent,
                          GrantResult result) noexcept {
  RiskChange change;
  {
    std::unique_lock lk(mu_);
    --renewing_;
    cv_.notify_all();
    if (phase_ != Phase::held) return;
    if (result.status == GrantStatus::held) {
      extended_locked(sent, plan.ttl);
      change = leave_risk_locked();
    } else {
      store_->stats.renewal_failures++;
    }
    if (result.status == GrantStatus::failed) {
      // Store unreachable: at risk; retry soon, and the tick at valid_until fires the loss.
      last_error_ = result.error;
      ++generation_;
      auto retry = std::clamp(interval_locked() / 4, milliseconds(10), milliseconds(1000));
      store_->scheduler.schedule(weak_from_this(), std::min(now() + retry, valid_until_),
                                 generation_, batchable());
      change = enter_risk_locked(result.error);
    }
  }
  if (result.status == GrantStatus::held) {
    note(LogLevel::debug, "renewed");
  } else {
    note(LogLevel::warning, "renewal failed",
         result.status == GrantStatus::not_held ? make_error_code(errc::not_held) : result.error);
  }
  change.fire();
  if (result.status == GrantStatus::not_held) {
    mark_lost(LossReason::rejected, make_error_code(errc::not_held));
  }
}

void LeaseState::tick(std::uint64_t generation) noexcept {
  auto plan = begin_tick(generation);
  if (!plan) return;
  const auto sent = now();
  end_tick(*plan, sent,
           store_->backend->extend(Context::with_deadline(plan->deadline), *grant_, plan->ttl));
}

}  // namespace dlock::detail
