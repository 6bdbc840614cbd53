// A scriptable in-memory backend on a manual clock, for unit tests of core: it records every
// call, lets a test choose the outcome of extensions and releases, and "waits" by moving the
// clock instead of sleeping.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/clock.hpp"

namespace dlock::test {

using detail::Attempt;
using detail::Clock;
using detail::GrantResult;
using detail::GrantState;

class FakeBackend final : public detail::Backend {
 public:
  struct Grant final : GrantState {
    Grant(std::string k, std::string t) : key(std::move(k)), token(std::move(t)) {}
    const std::string key, token;
  };

  explicit FakeBackend(detail::ManualClock& clock) : clock_(clock) {}

  // ---- what the test sets ----
  Capabilities caps{};
  /// What `extend` answers (default: held if the grant still holds its key).
  std::function<GrantResult(const Grant&)> on_extend;
  /// Called at the start of each attempt (e.g. to move the clock: a slow reply).
  std::function<void(int attempt_no)> on_attempt;
  /// Called with each grant an attempt makes, before core has it.
  std::function<void(Grant&)> on_grant;
  /// Called with each wait's `until` before the clock moves there (e.g. to cancel).
  std::function<void(Clock::time_point until)> on_wait;
  /// Remaining TTL the store reports for a foreign holder (bounds the core's waits).
  std::optional<std::chrono::milliseconds> holder_ttl;
  /// What inspect returns.
  Inspection inspection{};

  // ---- what the test reads ----
  std::mutex mu;
  int attempts = 0, releases = 0, extends = 0, abandons = 0, closes = 0, inspects = 0;
  std::vector<std::size_t> batch_sizes;
  std::vector<Clock::time_point> waits;
  std::vector<Grant*> live;  // Grants made, in order (each valid while its lease lives).

  /// Makes `key` held by a foreign holder until released with `free_key`.
  void hold_foreign(const std::string& key) {
    std::lock_guard lk(mu);
    holders_[key] = "foreign";
  }
  void free_key(const std::string& key) {
    std::lock_guard lk(mu);
    holders_.erase(key);
  }

  std::string_view scheme() const override { return "fake"; }
  Capabilities capabilities() const override { return caps; }

  std::unique_ptr<detail::AcquireSession> start_acquire(
      const detail::AcquireRequest& req) override {
    return std::make_unique<Session>(*this, req);
  }

  GrantResult release(const Context&, GrantState& g) noexcept override {
    auto& grant = static_cast<Grant&>(g);
    std::lock_guard lk(mu);
    ++releases;
    auto it = holders_.find(grant.key);
    if (it == holders_.end() || it->second != grant.token) return GrantResult::not_held();
    holders_.erase(it);
    return GrantResult::held();
  }

  GrantResult extend(const Context&, GrantState& g, std::chrono::milliseconds) noexcept override {
    auto& grant = static_cast<Grant&>(g);
    std::lock_guard lk(mu);
    ++extends;
    if (on_extend) return on_extend(grant);
    auto it = holders_.find(grant.key);
    return GrantResult::held_if(it != holders_.end() && it->second == grant.token);
  }

  std::vector<GrantResult> extend_many(const Context& ctx,
                                       std::span<const Extension> items) noexcept override {
    {
      std::lock_guard lk(mu);
      batch_sizes.push_back(items.size());
    }
    return Backend::extend_many(ctx, items);
  }

  Inspection inspect(const Context&, const std::string& key) override {
    std::lock_guard lk(mu);
    ++inspects;
    Inspection r = inspection;
    r.key = key;
    return r;
  }
  std::vector<Inspection> list(const Context&, const std::string&) override { return {}; }
  bool force_release(const Context&, const std::string& key) override {
    std::lock_guard lk(mu);
    return holders_.erase(key) > 0;
  }
  void close() noexcept override {
    std::lock_guard lk(mu);
    ++closes;
  }

 private:
  class Session final : public detail::AcquireSession {
   public:
    Session(FakeBackend& b, detail::AcquireRequest r) : b_(b), req_(std::move(r)) {}
    Attempt attempt(const Context&) override {
      int n;
      {
        std::lock_guard lk(b_.mu);
        n = ++b_.attempts;
      }
      if (b_.on_attempt) b_.on_attempt(n);
      std::lock_guard lk(b_.mu);
      if (b_.holders_.count(req_.key)) return Attempt::lost(b_.holder_ttl);
      b_.holders_[req_.key] = req_.token;
      auto g = std::make_unique<Grant>(req_.key, req_.token);
      b_.live.push_back(g.get());
      if (b_.on_grant) b_.on_grant(*g);
      return Attempt::won(std::move(g), ++b_.fencing_);
    }
    bool wait(const Context& ctx, Clock::time_point until) override {
      {
        std::lock_guard lk(b_.mu);
        b_.waits.push_back(until);
      }
      if (b_.on_wait) b_.on_wait(until);
      b_.clock_.advance_to(std::min(until, ctx.deadline()));  // The "sleep".
      return false;
    }
    void abandon() noexcept override {
      std::lock_guard lk(b_.mu);
      ++b_.abandons;
    }

   private:
    FakeBackend& b_;
    detail::AcquireRequest req_;
  };

  detail::ManualClock& clock_;
  std::map<std::string, std::string> holders_;  // key -> token
  std::uint64_t fencing_ = 0;
};

}  // namespace dlock::test
