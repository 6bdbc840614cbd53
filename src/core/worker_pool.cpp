#include "core/worker_pool.hpp"

#include <cstdlib>

namespace dlock::detail {

WorkerPool& WorkerPool::process_wide() {
  // Never destroyed (a forked child must not join threads it does not have); the owning
  // process stops the threads at exit.
  static WorkerPool* p = [] {
    auto* pool = new WorkerPool(16);
    std::atexit([] { process_wide().shutdown(); });
    return pool;
  }();
  return *p;
}

WorkerPool::WorkerPool(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

WorkerPool::~WorkerPool() { shutdown(); }

void WorkerPool::shutdown() {
  if (forked_away(pid_)) return;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> job) {
  if (forked_away(pid_)) return;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // Stopping, and nothing left.
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lk.unlock();
    job();
    // Destroyed before the pool's lock is taken again: what the job holds (a lease whose
    // grant takes a store's lock as it goes) must not nest inside the pool's lock, which
    // the stores' notifications take while holding theirs (TSan: lock-order inversion).
    job = nullptr;
    lk.lock();
  }
}

}  // namespace dlock::detail
