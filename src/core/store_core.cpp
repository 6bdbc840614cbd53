#include "core/store_core.hpp"

#include <algorithm>

#include "core/access.hpp"
#include "core/acquire_fsm.hpp"
#include "core/backoff.hpp"
#include "core/fork_guard.hpp"
#include "core/metadata.hpp"
#include "core/renewal_scheduler.hpp"
#include "core/token.hpp"
#include "core/validate.hpp"
#include "dlock/error.hpp"

namespace dlock::detail {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool AcquireSession::wait(const Context& ctx, clock::time_point until) {
  // Stores without notifications: sleep until `until`, woken early only by cancellation.
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lk(m);
  cv.wait_until(lk, ctx.stop_token(), std::min(until, ctx.deadline()), [] { return false; });
  return false;
}

std::vector<GrantResult> Backend::extend_many(const Context& ctx,
                                              std::span<const Extension> items) noexcept {
  std::vector<GrantResult> out;
  out.reserve(items.size());
  for (const auto& e : items) out.push_back(extend(ctx, *e.grant, e.ttl));
  return out;
}

GrantResult Backend::downgrade(const Context&, GrantState&) noexcept {
  return GrantResult::failed(make_error_code(errc::unsupported));
}

GrantResult Backend::set_metadata(const Context&, GrantState&, const std::string&) noexcept {
  return GrantResult::failed(make_error_code(errc::unsupported));
}

std::unique_ptr<Backend::ChangeWatch> Backend::watch_changes(const std::string&) { return nullptr; }

Store make_store(std::shared_ptr<Backend> backend, std::string redacted_url) {
  return make_store(std::move(backend), std::move(redacted_url), SteadyClock::instance(),
                    RenewalScheduler::process_wide());
}

Store make_store(std::shared_ptr<Backend> backend, std::string redacted_url, const Clock& clock,
                 RenewalScheduler& scheduler) {
  return Access::store(
      std::make_shared<StoreCore>(std::move(backend), std::move(redacted_url), clock, scheduler));
}

StoreCore::StoreCore(std::shared_ptr<Backend> backend, std::string redacted_url, const Clock& clock,
                     RenewalScheduler& scheduler)
    : shared_(std::make_shared<StoreShared>(std::move(backend), clock, scheduler)),
      url_(std::move(redacted_url)) {}

StoreCore::~StoreCore() {
  if (forked_away(shared_->pid)) {
    // Never touch a mutex a parent thread may have held; the holds stay the parent's.
    new std::map<std::string, Hold, std::less<>>(std::move(held_));
    return;
  }
  std::map<std::string, Hold, std::less<>> held;
  {
    std::lock_guard lk(mu_);
    held.swap(held_);
  }
  // Lease destructors release, bounded by their own timeout.
}

std::optional<Lease> StoreCore::acquire(const Context& ctx, std::string_view key,
                                        const LockOptions& opts, bool single_attempt) {
  if (!opts.reentrant) return acquire_grant(ctx, key, opts, single_attempt);
  check_open(key, "acquire");
  const std::string k(key);
  const std::string owner = opts.owner.empty() ? thread_owner() : opts.owner;
  if (auto share = reentries_->join(k, owner, opts.mode)) {
    shared_->stats.acquisitions++;  // Held already: no round trip.
    auto state = share->state;
    return Access::lease(std::move(state), std::move(share));
  }
  auto lease = acquire_grant(ctx, key, opts, single_attempt);
  if (!lease) return lease;
  auto state = Access::take(*lease);
  auto share = std::make_shared<Reentry>(state, reentries_, k, owner);
  reentries_->add(share);
  return Access::lease(std::move(state), std::move(share));
}

std::optional<Lease> StoreCore::acquire_grant(const Context& ctx, std::string_view key,
                                              const LockOptions& opts, bool single_attempt) {
  AcquireFsm fsm(shared_, std::string(key), opts, ctx, single_attempt);
  const Context& call = fsm.context();
  using Kind = AcquireFsm::Step::Kind;
  // Waiters of this store object line up locally: only the head of a key's line talks to
  // the store, so one release costs one attempt from this process, not one per thread.
  LocalQueue::Turn turn = fsm.waits() ? line_.enter(fsm.request().key, call) : LocalQueue::Turn();
  if (fsm.waits() && !turn) std::rethrow_exception(fsm.gave_up_in_line().error);
  std::unique_ptr<AcquireSession> session;
  AcquireFsm::Step step;
  try {
    session = shared_->backend->start_acquire(fsm.request());
    step = fsm.start();
  } catch (...) {
    step = fsm.threw(std::current_exception());
  }
  for (;;) {
    switch (step.kind) {
      case Kind::attempt:
        try {
          step = fsm.attempted(session->attempt(call));
        } catch (...) {
          step = fsm.threw(std::current_exception());
        }
        break;
      case Kind::wait:
        try {
          step = fsm.waited(session->wait(call, step.until));
        } catch (...) {
          step = fsm.wait_threw(std::current_exception());
        }
        break;
      case Kind::won:
        return fsm.take_lease();
      case Kind::lost:
        session->abandon();
        return std::nullopt;
      case Kind::failed:
        // The session undoes what it started: its queue entry, and a grant whose answer was
        // lost (conditional on our token, so it never hurts another holder).
        if (auto late = fsm.take_late_grant()) {
          shared_->backend->release(Context::with_timeout(kCleanupTimeout), *late);
        }
        if (session) session->abandon();
        std::rethrow_exception(step.error);
    }
  }
}

MultiLease StoreCore::acquire_all(const Context& ctx, std::vector<std::string> keys,
                                  const LockOptions& opts) {
  check_open("", "acquire_all");
  if (keys.empty()) {
    throw Error(errc::invalid_argument, shared_->scheme, "", "acquire_all", "no keys given");
  }
  // One global order for every caller: no two of them can wait for each other in a cycle.
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (const auto& k : keys) validate_key(k, shared_->caps, shared_->scheme, "acquire_all");
  // The whole group shares one deadline (the wait policy's, from now).
  Context call = ctx;
  if (opts.wait.mode == WaitPolicy::Mode::up_to) {
    call = Context::with_deadline(
        std::min(ctx.deadline(), shared_->clock.now() + opts.wait.timeout), ctx.stop_token());
  }
  LockOptions each = opts;
  if (each.wait.mode == WaitPolicy::Mode::up_to) each.wait = WaitPolicy::forever();
  std::vector<Lease> held;
  held.reserve(keys.size());
  for (const auto& k : keys) {
    auto lease = acquire(call, k, each, false);  // Throws: `held` releases what it has.
    if (!lease) {
      throw Error(errc::timeout, shared_->scheme, k, "acquire_all",
                  "held by another owner (no-wait policy)");
    }
    held.push_back(std::move(*lease));
  }
  return MultiLease(std::move(held));
}

namespace {

LockInfo to_lock_info(Backend::Inspection&& r, std::string_view key) {
  LockInfo info;
  info.key = r.key.empty() ? std::string(key) : std::move(r.key);
  info.waiters = r.waiters;
  for (auto& h : r.holders) {
    HolderInfo out{h.mode, h.fencing_token, h.ttl_remaining, {}};
    if (!h.metadata.empty()) out.owner = parse_metadata(h.metadata);
    info.holders.push_back(std::move(out));
  }
  if (!info.holders.empty()) {
    const HolderInfo& first = info.holders.front();
    info.held = true;
    info.fencing_token = first.fencing_token;
    info.ttl_remaining = first.ttl_remaining;
    info.owner = first.owner;
  }
  return info;
}

}  // namespace

LockInfo StoreCore::inspect(const Context& ctx, std::string_view key) {
  check_open(key, "inspect");
  validate_key(key, shared_->caps, shared_->scheme, "inspect");
  return to_lock_info(shared_->backend->inspect(ctx, std::string(key)), key);
}

std::vector<LockInfo> StoreCore::list(const Context& ctx, std::string_view prefix) {
  check_open(prefix, "list");
  auto rows = shared_->backend->list(ctx, std::string(prefix));
  std::vector<LockInfo> out;
  out.reserve(rows.size());
  for (auto& r : rows) {
    if (!r.holders.empty()) out.push_back(to_lock_info(std::move(r), {}));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  return out;
}

bool StoreCore::force_release(const Context& ctx, std::string_view key) {
  check_open(key, "force_release");
  validate_key(key, shared_->caps, shared_->scheme, "force_release");
  return shared_->backend->force_release(ctx, std::string(key));
}

void StoreCore::hold(Lease lease) {
  Hold stale;
  auto state = Access::state(lease);
  std::lock_guard lk(mu_);
  auto& slot = held_[lease.key()];
  stale = std::move(slot);  // Expired earlier; the store gave the key anew. Released below.
  slot = Hold{std::move(lease), std::move(state)};
}

void StoreCore::hold_borrowed(std::shared_ptr<LeaseState> state) {
  Hold stale;
  std::lock_guard lk(mu_);
  auto& slot = held_[state->key()];
  stale = std::move(slot);
  slot = Hold{Lease(), std::move(state)};
}

StoreCore::Hold StoreCore::take(std::string_view key) {
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  if (it == held_.end()) return {};
  Hold h = std::move(it->second);
  held_.erase(it);
  return h;
}

void StoreCore::drop_hold(std::string_view key, const LeaseState* state) {
  Hold gone;
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  if (it == held_.end() || it->second.state.get() != state) return;
  gone = std::move(it->second);
  held_.erase(it);
}

std::shared_ptr<LeaseState> StoreCore::find(std::string_view key) const {
  std::lock_guard lk(mu_);
  auto it = held_.find(key);
  return it == held_.end() ? nullptr : it->second.state;
}

void StoreCore::close() {
  if (forked_away(shared_->pid)) return;  // The parent's grants and connections stay its own.
  if (shared_->closed.exchange(true)) return;
  std::map<std::string, Hold, std::less<>> held;
  {
    std::lock_guard lk(mu_);
    held.swap(held_);
  }
  auto ctx = Context::with_timeout(kCleanupTimeout);
  for (auto& [k, h] : held) h.state->release(ctx);
  std::vector<std::shared_ptr<LeaseState>> live;
  {
    std::lock_guard lk(shared_->live_mu);
    for (LeaseState* p : shared_->live) {
      if (auto s = p->weak_from_this().lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->release(ctx);
  shared_->backend_closed = true;
  shared_->backend->close();
}

}  // namespace dlock::detail
