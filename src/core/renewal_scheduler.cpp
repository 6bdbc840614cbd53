#include "core/renewal_scheduler.hpp"

#include <cstdlib>

#include "core/fork_guard.hpp"
#include "core/lease_state.hpp"

namespace dlock::detail {

RenewalScheduler& RenewalScheduler::instance() {
  // Eight workers: renewals are blocking round trips (pipelined on one connection by the
  // network stores, so more in flight means more renewals per second), and one slow store
  // must not hold up the renewals of another. Never destroyed: a forked child inherits the object
  // but not its threads, and destroying its condition variables there would wait forever. The
  // owning process stops the threads at exit instead.
  static RenewalScheduler* s = [] {
    auto* p = new RenewalScheduler(8);
    std::atexit([] { instance().shutdown(); });
    return p;
  }();
  return *s;
}

RenewalScheduler::RenewalScheduler(unsigned workers) {
  threads_.emplace_back([this] { timer_loop(); });
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

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

void RenewalScheduler::schedule(std::weak_ptr<LeaseState> lease, clock::time_point due,
                                std::uint64_t generation, bool batchable, clock::duration early) {
  if (forked_away(pid_)) return;  // Never touch a mutex a parent thread may have held.
  bool earliest;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    if (!batchable) early = {};
    earliest = heap_.empty() || due < heap_.top().due;
    heap_.push(Entry{due, seq_++, std::move(lease), generation, batchable, early});
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

std::size_t RenewalScheduler::pending() const {
  std::lock_guard lk(mu_);
  return heap_.size();
}

void RenewalScheduler::timer_loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      timer_cv_.wait(lk);
      continue;
    }
    const auto now = clock::now();
    const auto first = heap_.top().due;
    if (now < first) {
      timer_cv_.wait_until(lk, first);
      continue;
    }
    // Everything due goes at once, with the batchable ticks that may run early (due within
    // their `early`), then the workers are woken once: a worker that finds many batchable
    // ticks sends them as one batch.
    std::size_t jobs = 0;
    bool batch = false;
    while (!heap_.empty() && heap_.top().due - heap_.top().early <= now) {
      Entry e = heap_.top();
      heap_.pop();
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
    if (jobs + (batch ? 1 : 0) > 1 || due_batchable_.size() > kMaxBatch) {
      work_cv_.notify_all();
    } else if (jobs + (batch ? 1 : 0) == 1) {
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
      fn();  // Ticks catch their own errors.
      lk.lock();
      continue;
    }
    std::vector<std::pair<std::shared_ptr<LeaseState>, std::uint64_t>> batch;
    while (!due_batchable_.empty() && batch.size() < kMaxBatch) {
      Entry e = std::move(due_batchable_.front());
      due_batchable_.pop_front();
      if (auto lease = e.lease.lock()) batch.emplace_back(std::move(lease), e.generation);
    }
    lk.unlock();
    LeaseState::tick_together(batch);
    batch.clear();  // Drops the leases without the lock (a last reference may release).
    lk.lock();
  }
}

}  // namespace dlock::detail
