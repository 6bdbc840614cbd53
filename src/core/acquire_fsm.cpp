#include "core/acquire_fsm.hpp"

#include <algorithm>

#include "core/access.hpp"
#include "core/backoff.hpp"
#include "core/logging.hpp"
#include "core/metadata.hpp"
#include "core/token.hpp"
#include "core/validate.hpp"
#include "dlock/error.hpp"

namespace dlock::detail {

using std::chrono::milliseconds;

namespace {

void validate_mode(const LockMode& mode, const Capabilities& caps, const std::string& scheme,
                   std::string_view key) {
  if (!caps.supports(mode.kind)) {
    throw Error(errc::unsupported, scheme, std::string(key), "acquire",
                mode.kind == LockMode::Kind::shared
                    ? "this store does not offer shared (read-write) locks"
                    : "this store does not offer semaphore permits");
  }
  if (mode.kind == LockMode::Kind::permits && (mode.count == 0 || mode.limit < mode.count)) {
    throw Error(errc::invalid_argument, scheme, std::string(key), "acquire",
                "permits need 1 <= count <= limit");
  }
}

}  // namespace

AcquireFsm::AcquireFsm(std::shared_ptr<StoreShared> store, std::string key, const LockOptions& opts,
                       const Context& ctx, bool single_attempt)
    : store_(std::move(store)), opts_(opts) {
  const std::string& scheme = store_->scheme;
  const Capabilities& caps = store_->caps;
  store_->check_open(key, "acquire");
  validate_key(key, caps, scheme, "acquire");
  validate_options(opts, scheme, key);
  validate_mode(opts.mode, caps, scheme, key);
  const milliseconds ttl = validate_ttl(opts.ttl, caps, scheme, key, "acquire");
  const bool no_wait = single_attempt || opts.wait.mode == WaitPolicy::Mode::no_wait;
  req_ = AcquireRequest{std::move(key), random_token(), ttl, make_metadata(opts.metadata),
                        !no_wait,       opts.mode};
  start_ = store_->clock.now();
  auto deadline = ctx.deadline();
  if (opts.wait.mode == WaitPolicy::Mode::up_to && !single_attempt) {
    deadline = std::min(deadline, start_ + opts.wait.timeout);
  }
  call_ = Context::with_deadline(deadline, ctx.stop_token());
}

AcquireFsm::Step AcquireFsm::fail(errc code, std::string detail) {
  return fail(std::make_exception_ptr(Error(code, store_->scheme, req_.key, "acquire", detail)));
}

AcquireFsm::Step AcquireFsm::fail(std::exception_ptr error) {
  store_->stats.acquire_failures++;
  if (log_enabled(LogLevel::info)) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_lock(LogLevel::info, "acquire failed", {store_->scheme, req_.key}, {},
             {{"error", std::move(what)}});
  }
  return Step{Step::Kind::failed, {}, std::move(error)};
}

AcquireFsm::Step AcquireFsm::start() { return next_attempt(); }

AcquireFsm::Step AcquireFsm::gave_up_in_line() {
  if (call_.stop_requested()) return fail(errc::cancelled, {});
  return fail(errc::timeout, "timed out behind local waiters");
}

AcquireFsm::Step AcquireFsm::next_attempt() {
  if (call_.stop_requested()) return fail(errc::cancelled, {});
  try {
    store_->check_open(req_.key, "acquire");
  } catch (...) {
    return fail(std::current_exception());
  }
  sent_ = store_->clock.now();
  ++attempts_;
  return Step{Step::Kind::attempt};
}

AcquireFsm::Step AcquireFsm::threw(std::exception_ptr error) {
  store_->stats.acquire_attempts++;
  return fail(std::move(error));
}

AcquireFsm::Step AcquireFsm::attempted(Attempt a) {
  auto& stats = store_->stats;
  const Clock& time = store_->clock;
  const milliseconds ttl = req_.ttl;
  if (a.sent_to_store) stats.acquire_attempts++;
  if (a.acquired()) {
    const auto valid_from = a.valid_from.value_or(sent_);
    if (time.now() >= valid_from + ttl - drift_margin(ttl)) {
      // Granted, but the reply came so late that the validity is already over.
      late_grant_ = std::move(a.grant);
      return fail(errc::timeout, "grant arrived after its validity");
    }
    stats.acquisitions++;
    stats.record_wait(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(time.now() - start_).count()));
    if (log_enabled(LogLevel::debug)) {
      const auto waited = std::chrono::duration_cast<milliseconds>(time.now() - start_);
      log_lock(LogLevel::debug, "acquired", {store_->scheme, req_.key, a.fencing_token}, {},
               {{"waited_ms", std::to_string(waited.count())}});
    }
    lease_ = Access::lease(LeaseState::create(
        store_, std::move(a.grant),
        GrantInfo{req_.key, req_.token, req_.mode, a.fencing_token, ttl, valid_from}, opts_));
    return Step{Step::Kind::won};
  }
  if (!req_.waits) {
    stats.acquire_failures++;
    log_lock(LogLevel::debug, "not acquired", {store_->scheme, req_.key});
    return Step{Step::Kind::lost};
  }
  if (opts_.retry.max_attempts > 0 && attempts_ >= opts_.retry.max_attempts) {
    return fail(errc::timeout, "not acquired after " + std::to_string(attempts_) + " attempts");
  }
  const auto now = time.now();
  const auto deadline = call_.deadline();
  if (now >= deadline) {
    return fail(errc::timeout,
                "not acquired within " +
                    std::to_string(std::chrono::duration_cast<milliseconds>(now - start_).count()) +
                    " ms (" + std::to_string(attempts_) + " attempts)");
  }
  // Wait for a notification, bounded by the backoff and the holder's remaining TTL, so a
  // missed notification (or a foreign client that publishes none) costs at most that.
  auto delay = backoff_delay(opts_.retry, attempts_);
  if (a.holder_ttl && a.holder_ttl->count() >= 0) {
    delay = std::min<std::chrono::microseconds>(delay, *a.holder_ttl + milliseconds(1));
  }
  return Step{Step::Kind::wait, std::min(now + delay, deadline)};
}

AcquireFsm::Step AcquireFsm::waited(bool notified) {
  if (notified) store_->stats.notifications++;
  return next_attempt();
}

Lease AcquireFsm::take_lease() { return std::move(*lease_); }

}  // namespace dlock::detail
