#include "etcd/loss_watch.hpp"

#include "etcd/client.hpp"
#include "etcd/etcd_backend.hpp"

namespace dlock::detail::etcd {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{1000};
// etcd's default limit of operations in one transaction (--max-txn-ops).
constexpr std::size_t kMaxTxnOps = 128;

}  // namespace

LossWatch::LossWatch(Client& client) : client_(client) {}

LossWatch::~LossWatch() { close(); }

void LossWatch::close() noexcept {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
  }
  stop_.request_stop();
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard lk(mu_);
  cancels_.clear();  // The client's close ends the stream and every watch on it.
}

void LossWatch::add(EtcdGrant& g, std::int64_t held_at) {
  std::lock_guard lk(mu_);
  if (closed_) return;
  const auto id = next_id_++;
  const auto at = clock::now() + kWatchAfter;
  entries_.emplace(id, Entry{&g, g.etcd_key, g.create_revision, held_at + 1, at});
  g.loss_watch_ = shared_from_this();
  g.watch_entry_ = id;
  if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
  // Wake the worker only when it would otherwise sleep past this watch's time; it then
  // sleeps until that time even if the grant is released meanwhile (most are), so a stream
  // of short locks costs it one wake-up per `kWatchAfter`, not one per lock.
  if (at < wake_at_) {
    wake_at_ = at;
    asked_for_ = std::min(asked_for_, at);
    cv_.notify_one();
  }
}

void LossWatch::remove(EtcdGrant& g) noexcept {
  std::lock_guard lk(mu_);
  if (g.watch_entry_ == 0) return;
  auto it = entries_.find(g.watch_entry_);
  g.watch_entry_ = 0;
  if (it == entries_.end()) return;
  if (it->second.slot && !closed_) {
    cancels_.push_back(std::move(it->second.slot));
    cv_.notify_one();
  }
  entries_.erase(it);
}

void LossWatch::lease_gone(std::int64_t lease) noexcept {
  std::lock_guard lk(mu_);
  std::vector<std::uint64_t> hit;
  for (auto& [id, e] : entries_) {
    if (e.state != State::lost && e.grant->lease().id == lease) hit.push_back(id);
  }
  for (auto id : hit) report_locked(id);
}

void LossWatch::report_locked(std::uint64_t id) noexcept {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.state == State::lost) return;
  Entry& e = it->second;
  e.state = State::lost;
  if (e.slot) {
    cancels_.push_back(std::move(e.slot));
    cv_.notify_one();
  }
  e.grant->report_lost(make_error_code(errc::lock_lost));
}

void LossWatch::noted(std::uint64_t id, std::uint64_t attempt, WatchHub::Note note) noexcept {
  std::lock_guard lk(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (note == WatchHub::Note::deleted) {
    // Every watch of the entry starts after a revision at which the key was ours: any DELETE
    // it reports ended our grant.
    report_locked(id);
    return;
  }
  if (e.attempt != attempt || (e.state != State::creating && e.state != State::watching)) return;
  e.state = State::unsure;
  e.slot.reset();
  cv_.notify_one();
}

milliseconds LossWatch::next_backoff_locked() {
  backoff_ = backoff_.count() == 0 ? kMinBackoff : std::min(backoff_ * 2, kMaxBackoff);
  return backoff_;
}

void LossWatch::run() {
  std::unique_lock lk(mu_);
  while (!closed_) {
    if (!cancels_.empty()) {
      auto cancels = std::move(cancels_);
      cancels_.clear();
      lk.unlock();
      for (auto& slot : cancels) client_.watches().cancel(slot);
      cancels.clear();
      lk.lock();
      continue;
    }
    const auto now = clock::now();
    bool unsure = false, due = false;
    auto next = clock::time_point::max();
    for (auto& [id, e] : entries_) {
      if (e.state == State::unsure) unsure = true;
      if (e.state != State::waiting) continue;
      if (e.watch_at <= now) {
        due = true;
      } else {
        next = std::min(next, e.watch_at);
      }
    }
    if (unsure) {
      if (now >= recheck_at_) {
        recheck(lk);
        continue;
      }
      next = std::min(next, recheck_at_);
    }
    if (due) {
      if (now >= create_at_) {
        create_due(lk, now);
        continue;
      }
      next = std::min(next, create_at_);
    }
    if (asked_for_ <= now) {
      asked_for_ = clock::time_point::max();
    } else {
      next = std::min(next, asked_for_);
    }
    wake_at_ = next;
    if (next == clock::time_point::max()) {
      cv_.wait(lk);
    } else {
      cv_.wait_until(lk, next);
    }
    wake_at_ = clock::time_point::max();
  }
}

// Re-reads the keys whose watch ended in one transaction, reports those that are gone and
// watches the others again from the revision after the read.
void LossWatch::recheck(std::unique_lock<std::mutex>& lk) {
  std::vector<std::uint64_t> ids;
  etcdserverpb::TxnRequest txn;
  for (auto& [id, e] : entries_) {
    if (e.state != State::unsure) continue;
    ids.push_back(id);
    txn.add_success()->mutable_request_range()->set_key(e.key);
    if (ids.size() == kMaxTxnOps) break;
  }
  lk.unlock();
  auto r = client_.txn(Context::with_timeout(client_.request_timeout(), stop_.get_token()), txn);
  lk.lock();
  const auto now = clock::now();
  if (!r.ok() || r.value.responses_size() != static_cast<int>(ids.size())) {
    recheck_at_ = now + next_backoff_locked();  // etcd is not answering yet: try again later.
    return;
  }
  // A watch that ends at once again (a stream that keeps breaking) is re-read at this pace.
  backoff_ = milliseconds(0);
  recheck_at_ = now + kMinBackoff;
  const auto resume = r.value.header().revision() + 1;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto it = entries_.find(ids[i]);
    if (it == entries_.end() || it->second.state != State::unsure) continue;
    const auto& kvs = r.value.responses(static_cast<int>(i)).response_range().kvs();
    if (kvs.empty() || kvs[0].create_revision() != it->second.create_revision) {
      report_locked(ids[i]);
      continue;
    }
    it->second.state = State::waiting;
    it->second.from = resume;
    it->second.watch_at = now;
  }
}

// Makes the watches that are due, one write each on the watch stream.
void LossWatch::create_due(std::unique_lock<std::mutex>& lk, clock::time_point now) {
  std::vector<std::uint64_t> due;
  for (auto& [id, e] : entries_) {
    if (e.state == State::waiting && e.watch_at <= now) due.push_back(id);
  }
  for (auto id : due) {
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.state != State::waiting) continue;
    Entry& e = it->second;
    e.state = State::creating;
    const auto attempt = ++e.attempt;
    const std::string key = e.key;
    const auto from = e.from;
    auto listener = [weak = weak_from_this(), id, attempt](WatchHub::Note note) {
      if (auto self = weak.lock()) self->noted(id, attempt, note);
    };
    lk.unlock();
    auto r = client_.watches().watch_deletes_from(key, from, std::move(listener));
    lk.lock();
    it = entries_.find(id);
    const bool current = it != entries_.end() && it->second.attempt == attempt;
    if (!r.ok() || !r.value) {
      if (current && it->second.state == State::creating) it->second.state = State::waiting;
      // The stream is down: try again later, from the same revision.
      create_at_ = clock::now() + next_backoff_locked();
      return;
    }
    if (!current || it->second.state != State::creating) {
      // Removed or reported meanwhile, or already ended (then it is unsure and re-read).
      if (!current || it->second.state == State::lost) cancels_.push_back(std::move(r.value));
      continue;
    }
    it->second.state = State::watching;
    it->second.slot = std::move(r.value);
    backoff_ = milliseconds(0);
  }
}

}  // namespace dlock::detail::etcd
