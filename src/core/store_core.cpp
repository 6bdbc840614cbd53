#include "core/store_core.hpp"

#include <algorithm>

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

std::vector<Backend::ExtensionResult> Backend::extend_many(const Context& ctx,
                                                           const std::vector<Extension>& items) {
  std::vector<ExtensionResult> out(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    try {
      out[i].status =
          extend(ctx, std::string(items[i].key), std::string(items[i].token), items[i].ttl) ? 1 : 0;
    } catch (const std::system_error& e) {
      out[i].error = e.code();
    } catch (...) {
      out[i].error = make_error_code(errc::protocol_error);
    }
  }
  return out;
}

std::shared_ptr<StoreCore> make_store_core(std::shared_ptr<Backend> backend,
                                           std::string redacted_url) {
  auto core = std::make_shared<StoreCore>(std::move(backend), std::move(redacted_url));
  std::weak_ptr<CoreShared> weak = core->shared();
  core->backend().set_loss_sink([weak](const std::string&, const std::string& token) {
    auto shared = weak.lock();
    if (!shared) return;
    std::shared_ptr<LeaseState> s;
    {
      std::lock_guard lk(shared->live_mu);
      auto it = shared->live.find(token);
      if (it != shared->live.end()) s = it->second->weak_from_this().lock();
    }
    // Callbacks run on a scheduler worker, never on the store's I/O thread.
    if (s) {
      RenewalScheduler::instance().post(
          [s] { s->mark_lost(LossReason::store_reported, make_error_code(errc::lock_lost)); });
    }
  });
  return core;
}

StoreCore::StoreCore(std::shared_ptr<Backend> backend, std::string redacted_url)
    : shared_(std::make_shared<CoreShared>()), url_(std::move(redacted_url)) {
  caps_ = backend->capabilities();
  shared_->scheme = std::string(backend->scheme());
  shared_->backend = std::move(backend);
}

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

bool StoreCore::closed() const {
  std::lock_guard lk(mu_);
  return closed_;
}

void StoreCore::check_open(std::string_view key, std::string_view step) const {
  if (forked_away(shared_->pid)) {
    throw Error(errc::unsupported, shared_->scheme, std::string(key), std::string(step),
                "store used in a child process after fork(); open a new one");
  }
  if (closed()) throw Error(errc::closed, shared_->scheme, std::string(key), std::string(step));
}

std::optional<Lease> StoreCore::acquire(const Context& ctx, std::string_view key_view,
                                        const LockOptions& opts, bool single_attempt) {
  const std::string& scheme = shared_->scheme;
  check_open(key_view, "acquire");
  validate_key(key_view, caps_, scheme, "acquire");
  validate_options(opts, scheme, key_view);
  const milliseconds ttl = validate_ttl(opts.ttl, caps_, scheme, key_view, "acquire");
  const std::string key(key_view);

  const bool no_wait = single_attempt || opts.wait.mode == WaitPolicy::Mode::no_wait;
  AcquireRequest req{key, random_token(), ttl, make_metadata(opts.metadata), !no_wait};
  auto deadline = ctx.deadline();
  const auto start = clock::now();
  if (opts.wait.mode == WaitPolicy::Mode::up_to && !single_attempt) {
    auto policy_deadline = start + opts.wait.timeout;
    deadline = std::min(deadline, policy_deadline);
  }
  const Context call = Context::with_deadline(deadline, ctx.stop_token());
  auto& stats = shared_->stats;

  // Waiters of this store object line up locally: only the head of a key's line talks to
  // the store, so one release costs one attempt from this process, not one per thread.
  LocalQueue::Turn turn = no_wait ? LocalQueue::Turn() : line_.enter(key, call);
  if (!no_wait && !turn) {
    stats.acquire_failures++;
    if (call.stop_requested()) throw Error(errc::cancelled, scheme, key, "acquire");
    throw Error(errc::timeout, scheme, key, "acquire", "timed out behind local waiters");
  }
  auto session = shared_->backend->start_acquire(req);
  // On any failure after the first attempt went out, the store may have granted us the lock
  // with the reply lost: undo it (conditional on our token, so it never hurts another holder).
  auto give_up = [&](bool maybe_granted) noexcept {
    session->abandon();
    stats.acquire_failures++;
    if (maybe_granted) {
      try {
        shared_->backend->release(Context::with_timeout(std::chrono::seconds(2)), key, req.token);
      } catch (...) {
      }
    }
  };

  for (int attempt_no = 1;; ++attempt_no) {
    if (call.stop_requested()) {
      give_up(false);
      throw Error(errc::cancelled, scheme, key, "acquire");
    }
    const auto sent = clock::now();
    Attempt a;
    try {
      a = session->attempt(call);
    } catch (...) {
      stats.acquire_attempts++;
      give_up(true);
      throw;
    }
    if (a.sent_to_store) stats.acquire_attempts++;
    if (a.acquired) {
      const auto valid_from = a.valid_from.value_or(sent);
      if (clock::now() >= valid_from + ttl - drift_margin(ttl)) {
        // Granted, but the reply came so late that the validity is already over.
        give_up(true);
        throw Error(errc::timeout, scheme, key, "acquire", "grant arrived after its validity");
      }
      stats.acquisitions++;
      stats.record_wait(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count()));
      return Lease(
          LeaseState::create(shared_, key, req.token, a.fencing_token, ttl, valid_from, opts));
    }
    if (no_wait) {
      give_up(false);
      return std::nullopt;
    }
    if (opts.retry.max_attempts > 0 && attempt_no >= opts.retry.max_attempts) {
      give_up(false);
      throw Error(errc::timeout, scheme, key, "acquire",
                  "not acquired after " + std::to_string(attempt_no) + " attempts");
    }
    auto now = clock::now();
    if (now >= deadline) {
      give_up(false);
      throw Error(
          errc::timeout, scheme, key, "acquire",
          "not acquired within " +
              std::to_string(std::chrono::duration_cast<milliseconds>(now - start).count()) +
              " ms (" + std::to_string(attempt_no) + " attempts)");
    }
    // Wait for a notification, bounded by the backoff and the holder's remaining TTL, so a
    // missed notification (or a foreign client that publishes none) costs at most that.
    auto delay = backoff_delay(opts.retry, attempt_no);
    if (a.holder_ttl && a.holder_ttl->count() >= 0) {
      delay = std::min<std::chrono::microseconds>(delay, *a.holder_ttl + milliseconds(1));
    }
    auto until = std::min(now + delay, deadline);
    try {
      if (session->wait(call, until)) stats.notifications++;
    } catch (...) {
      give_up(false);
      throw;
    }
  }
}

LockInfo StoreCore::inspect(const Context& ctx, std::string_view key) {
  check_open(key, "inspect");
  validate_key(key, caps_, shared_->scheme, "inspect");
  auto r = shared_->backend->inspect(ctx, std::string(key));
  if (!r.metadata.empty()) r.info.owner = parse_metadata(r.metadata);
  r.info.key = std::string(key);
  return r.info;
}

std::vector<LockInfo> StoreCore::list(const Context& ctx, std::string_view prefix) {
  check_open(prefix, "list");
  auto rows = shared_->backend->list(ctx, std::string(prefix));
  std::vector<LockInfo> out;
  out.reserve(rows.size());
  for (auto& r : rows) {
    if (!r.metadata.empty()) r.info.owner = parse_metadata(r.metadata);
    out.push_back(std::move(r.info));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  return out;
}

void StoreCore::hold(Lease lease) {
  Hold stale;
  auto state = lease.state();
  std::lock_guard lk(mu_);
  auto& slot = held_[lease.key()];
  stale = std::move(slot);  // Expired earlier; the store gave the key anew. Released below.
  slot = Hold{std::move(lease), std::move(state)};
}

void StoreCore::lend(std::shared_ptr<LeaseState> state) {
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

void StoreCore::forget(std::string_view key, const LeaseState* state) {
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
  std::map<std::string, Hold, std::less<>> held;
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    held.swap(held_);
  }
  auto ctx = Context::with_timeout(std::chrono::seconds(5));
  for (auto& [k, h] : held) h.state->release(ctx);
  std::vector<std::shared_ptr<LeaseState>> live;
  {
    std::lock_guard lk(shared_->live_mu);
    for (auto& [t, p] : shared_->live) {
      if (auto s = p->weak_from_this().lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->release(ctx);
  shared_->backend->close();
}

}  // namespace dlock::detail
