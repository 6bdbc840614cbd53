#include "core/renewal_scheduler.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/fork_guard.hpp"
#include "core/lease_state.hpp"

namespace dlock::detail {

RenewalScheduler& RenewalScheduler::process_wide() {
  // Eight workers: renewals are blocking round trips (pipelined on one connection by the
  // network stores, so more in flight means more renewals per second), and one slow store
  // must not hold up the renewals of another. Never destroyed: a forked child inherits the
  // object but not its threads, and destroying its condition variables there would wait
  // forever. The owning process stops the threads at exit instead.
  static RenewalScheduler* s = [] {
    auto* p = new RenewalScheduler(SteadyClock::instance(), 8);
    std::atexit([] { process_wide().shutdown(); });
    return p;
  }();
  return *s;
}

RenewalScheduler::RenewalScheduler(const Clock& clock, unsigned workers) : clock_(clock) {
  if (workers == 0) return;
  threads_.emplace_back([this] { timer_loop(); });
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

RenewalScheduler::~RenewalScheduler() { shutdown(); }

void RenewalScheduler::shutdown() {
  if (forked_away(pid_)) return;  // None of the threads exist here.
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  timer_cv_.notify_all();
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void RenewalScheduler::schedule(std::weak_ptr<LeaseState> lease, time_point due,
                                std::uint64_t generation, bool batchable, duration early) {
  if (forked_away(pid_)) return;  // Never touch a mutex a parent thread may have held.
  bool earliest;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    if (!batchable) early = {};
    earliest = heap_.empty() || due < heap_.top().due;
    heap_.push(Entry{due, seq_++, std::move(lease), generation, batchable, early, {}});
  }
  if (earliest) timer_cv_.notify_one();
}

void RenewalScheduler::post(std::function<void()> fn) {
  if (forked_away(pid_)) return;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    ready_.push_back(std::move(fn));
  }
  work_cv_.notify_one();
}

void RenewalScheduler::post_at(time_point due, std::function<void()> fn) {
  if (forked_away(pid_)) return;
  bool earliest;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    earliest = heap_.empty() || due < heap_.top().due;
    heap_.push(Entry{due, seq_++, {}, 0, false, {}, std::move(fn)});
  }
  if (earliest) timer_cv_.notify_one();
}

std::size_t RenewalScheduler::pending() const {
  std::lock_guard lk(mu_);
  return heap_.size();
}

std::size_t RenewalScheduler::collect_due_locked(time_point now) {
  // Everything due goes at once, with the batchable ticks that may run early (due within
  // their `early`): a worker that finds many batchable ticks sends them as one batch.
  std::size_t jobs = 0;
  bool batch = false;
  while (!heap_.empty() && heap_.top().due - heap_.top().early <= now) {
    Entry e = heap_.top();
    heap_.pop();
    if (e.job) {
      ready_.push_back(std::move(e.job));
      ++jobs;
      continue;
    }
    if (e.lease.expired()) continue;
    if (e.batchable) {
      due_batchable_.push_back(std::move(e));
      batch = true;
    } else {
      ready_.push_back([lease = std::move(e.lease), gen = e.generation] {
        if (auto s = lease.lock()) s->tick(gen);
      });
      ++jobs;
    }
  }
  const std::size_t batches = batch ? (due_batchable_.size() + kMaxBatch - 1) / kMaxBatch : 0;
  return jobs + batches;
}

RenewalScheduler::Due RenewalScheduler::take_batch_locked() {
  Due batch;
  while (!due_batchable_.empty() && batch.size() < kMaxBatch) {
    Entry e = std::move(due_batchable_.front());
    due_batchable_.pop_front();
    if (auto lease = e.lease.lock()) batch.emplace_back(std::move(lease), e.generation);
  }
  return batch;
}

std::size_t RenewalScheduler::run_due() {
  std::size_t ran = 0;
  std::unique_lock lk(mu_);
  collect_due_locked(clock_.now());
  while (!ready_.empty() || !due_batchable_.empty()) {
    if (!ready_.empty()) {
      auto fn = std::move(ready_.front());
      ready_.pop_front();
      lk.unlock();
      fn();
      fn = nullptr;  // Destroyed without the lock, like the batches below.
      ++ran;
    } else {
      Due batch = take_batch_locked();
      lk.unlock();
      ran += batch.size();
      tick_together(batch);
      batch.clear();  // Drops the leases without the lock (a last reference may release).
    }
    lk.lock();
  }
  return ran;
}

void RenewalScheduler::timer_loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      timer_cv_.wait(lk);
      continue;
    }
    const auto now = clock_.now();
    // Wakes at the first due tick, then takes the batchable ones due within their `early`.
    const auto first = heap_.top().due;
    if (now < first) {
      timer_cv_.wait_until(lk, first);
      continue;
    }
    const std::size_t wake = collect_due_locked(now);
    if (wake > 1) {
      work_cv_.notify_all();
    } else if (wake == 1) {
      work_cv_.notify_one();
    }
  }
}

void RenewalScheduler::worker_loop() {
  std::unique_lock lk(mu_);
  while (true) {
    work_cv_.wait(lk, [&] { return stopping_ || !ready_.empty() || !due_batchable_.empty(); });
    if (stopping_) return;
    if (!ready_.empty()) {
      auto fn = std::move(ready_.front());
      ready_.pop_front();
      lk.unlock();
      fn();          // Ticks catch their own errors.
      fn = nullptr;  // Destroyed without the lock, like the batches below.
      lk.lock();
      continue;
    }
    Due batch = take_batch_locked();
    lk.unlock();
    tick_together(batch);
    batch.clear();  // Drops the leases without the lock (a last reference may release).
    lk.lock();
  }
}

void RenewalScheduler::tick_together(Due& due) noexcept {
  struct Item {
    LeaseState* lease;
    LeaseState::RenewalPlan plan;
  };
  std::vector<Item> items;
  items.reserve(due.size());
  for (auto& [lease, generation] : due) {
    if (auto plan = lease->begin_tick(generation)) items.push_back({lease.get(), *plan});
  }
  // One batch per store object.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return &a.lease->store() < &b.lease->store();
  });
  std::vector<Backend::Extension> batch;
  for (std::size_t first = 0; first < items.size();) {
    StoreShared& store = items[first].lease->store();
    std::size_t end = first;
    auto deadline = time_point::max();
    batch.clear();
    while (end < items.size() && &items[end].lease->store() == &store) {
      const Item& it = items[end++];
      batch.push_back({&it.lease->grant(), it.plan.ttl});
      deadline = std::min(deadline, it.plan.deadline);  // The tightest bound for all.
    }
    const auto sent = store.clock.now();
    auto results = store.backend->extend_many(Context::with_deadline(deadline), batch);
    results.resize(batch.size(), GrantResult::failed(make_error_code(errc::protocol_error)));
    for (std::size_t i = first; i < end; ++i) {
      items[i].lease->end_tick(items[i].plan, sent, results[i - first]);
    }
    first = end;
  }
}

}  // namespace dlock::detail
