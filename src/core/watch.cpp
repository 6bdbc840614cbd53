// Store::watch: read the lock, report what changed since the last read, wait for the store's
// next notification (or the poll interval, or the first holder's expiry), and again. Reading
// after every wake-up means the current state is never missed, whatever notifications were
// lost; the diff between two reads names the change.
#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "core/backoff.hpp"
#include "core/store_core.hpp"
#include "core/validate.hpp"
#include "dlock/store.hpp"

namespace dlock {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const HolderInfo* find(const LockInfo& info, std::uint64_t fencing) {
  for (const auto& h : info.holders) {
    if (h.fencing_token == fencing) return &h;
  }
  return nullptr;
}

// An event without a holder (snapshot, changed). Built member by member: GCC 12 at -O3 warns
// (-Wmaybe-uninitialized, wrongly) about a braced `{kind, {}, state}`.
LockEvent state_event(LockEvent::Kind kind, const LockInfo& state) {
  LockEvent e;
  e.kind = kind;
  e.state = state;
  return e;
}

bool same_data(const LockInfo& a, const LockInfo& b) {
  if (a.waiters != b.waiters || a.holders.size() != b.holders.size()) return false;
  for (std::size_t i = 0; i < a.holders.size(); ++i) {
    const auto& x = a.holders[i].owner;
    const auto& y = b.holders[i].owner;
    if (a.holders[i].fencing_token != b.holders[i].fencing_token || x.text != y.text ||
        x.pid != y.pid || x.host != y.host || !(a.holders[i].mode == b.holders[i].mode)) {
      return false;
    }
  }
  return true;
}

// The events that lead from `before` (read at `before_at`) to `now`, in order: holders that
// went (released, or expired when their TTL had run out), then holders that came (acquired,
// or handed over when one went and one came between two reads with the lock never seen free).
std::vector<LockEvent> diff(const LockInfo& before, clock::time_point before_at,
                            const LockInfo& now, clock::time_point now_at) {
  std::vector<LockEvent> out;
  std::size_t gone = 0;
  for (const auto& h : before.holders) {
    if (find(now, h.fencing_token) && h.fencing_token != 0) continue;
    if (h.fencing_token == 0 && !now.holders.empty()) continue;  // A foreign holder stays.
    ++gone;
    const bool ran_out = h.ttl_remaining.count() >= 0 && before_at + h.ttl_remaining <= now_at;
    out.push_back({ran_out ? LockEvent::Kind::expired : LockEvent::Kind::released, h, now});
  }
  std::size_t came = 0;
  for (const auto& h : now.holders) {
    if (find(before, h.fencing_token)) continue;
    if (h.fencing_token == 0 && !before.holders.empty()) continue;
    ++came;
    const bool handed = gone > 0 && before.holders.size() == 1 && now.holders.size() == 1;
    out.push_back({handed ? LockEvent::Kind::handed_over : LockEvent::Kind::acquired, h, now});
  }
  // A hand-over reads as one event, not as a release followed by an acquisition.
  if (gone == 1 && came == 1 && out.back().kind == LockEvent::Kind::handed_over) {
    out.erase(out.begin());
  }
  if (out.empty() && !same_data(before, now))
    out.push_back(state_event(LockEvent::Kind::changed, now));
  return out;
}

// Sleeps until `t`, woken early by the context's stop.
void sleep_until(const Context& ctx, clock::time_point t) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lk(m);
  cv.wait_until(lk, ctx.stop_token(), std::min(t, ctx.deadline()), [] { return false; });
}

}  // namespace

std::string_view to_string(LockEvent::Kind kind) noexcept {
  switch (kind) {
    case LockEvent::Kind::snapshot:
      return "snapshot";
    case LockEvent::Kind::acquired:
      return "acquired";
    case LockEvent::Kind::released:
      return "released";
    case LockEvent::Kind::expired:
      return "expired";
    case LockEvent::Kind::handed_over:
      return "handed_over";
    case LockEvent::Kind::changed:
      return "changed";
  }
  return "unknown";
}

void Store::watch(const Context& ctx, std::string_view key_view,
                  const std::function<bool(const LockEvent&)>& cb, milliseconds poll) {
  auto& core = live(key_view, "watch");
  detail::validate_key(key_view, core.capabilities(), core.scheme(), "watch");
  if (poll.count() <= 0) {
    throw Error(errc::invalid_argument, std::string(core.scheme()), std::string(key_view), "watch",
                "the poll interval must be > 0");
  }
  const std::string key(key_view);
  std::unique_ptr<detail::Backend::ChangeWatch> changes;
  std::optional<LockInfo> last;
  clock::time_point last_at{};
  RetryPolicy retry{.delay = milliseconds(50), .max_delay = milliseconds(2000)};
  for (int failures = 0; !ctx.done();) {
    LockInfo info;
    try {
      core.check_open(key, "watch");
      // Subscribe before reading, so that a change after the read wakes the wait below.
      if (!changes) changes = core.shared()->backend->watch_changes(key);
      info = core.inspect(ctx, key);
    } catch (const Error& e) {
      if (e.code() == errc::closed || e.code() == errc::invalid_argument ||
          e.code() == errc::auth_failed || ctx.done()) {
        if (ctx.done()) return;
        throw;
      }
      // The store is away: try again, and report the state as a snapshot once it is back.
      changes.reset();
      last.reset();
      sleep_until(ctx, clock::now() + detail::backoff_delay(retry, ++failures));
      continue;
    }
    failures = 0;
    const auto now = clock::now();
    std::vector<LockEvent> events;
    if (!last) {
      events.push_back(state_event(LockEvent::Kind::snapshot, info));
    } else {
      events = diff(*last, last_at, info, now);
    }
    for (const auto& e : events) {
      if (!cb(e)) return;
    }
    last = info;
    last_at = now;
    // Wait for the next change (a notification; without them, the poll interval), or the
    // first holder's expiry, which no store announces on its own. A store that notifies is
    // still read again now and then (30 s), in case a notification was lost.
    auto until = now + (changes ? std::max(poll, milliseconds(30000)) : poll);
    for (const auto& h : info.holders) {
      if (h.ttl_remaining.count() >= 0) {
        until = std::min(until, now + h.ttl_remaining + milliseconds(5));
      }
    }
    try {
      if (changes) {
        changes->wait(ctx, std::min(until, ctx.deadline()));
      } else {
        sleep_until(ctx, until);
      }
    } catch (const Error&) {
      changes.reset();  // Subscribe again at the next read.
    }
  }
}

}  // namespace dlock
