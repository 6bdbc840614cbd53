// The renewal scheduler: when each held lease renews (or, without auto-renewal, checks that
// its validity ended), and the batching of renewals that fall due together.
//
// A min-heap of (due time, lease) on one timer thread, plus a few worker threads that run the
// due work (a renewal round trip, or the loss signal when validity ended). Leases are held by
// weak_ptr: a released or destroyed lease's entries are skipped. A lease re-schedules itself
// after each tick, so the heap holds about one entry per held lease. Renewals of leases whose
// store sends them in batches (`Capabilities::extends_in_batches`) that are due together go
// to their store as one `Backend::extend_many` per store object.
//
// Every store object uses the process-wide instance; unit tests make their own with no
// threads and a manual clock, and drive it with `run_due()`.
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/fork_guard.hpp"

namespace dlock::detail {

class LeaseState;

class RenewalScheduler {
 public:
  using time_point = Clock::time_point;
  using duration = Clock::duration;

  /// The process-wide instance on the steady clock (threads start on first use, stop at
  /// exit; never destroyed).
  static RenewalScheduler& process_wide();

  /// A scheduler on `clock` with a timer thread and `workers` worker threads (the timer waits
  /// on the steady clock, so `clock` must be it); with 0 workers it starts no thread at all
  /// and runs only in `run_due()` (tests, on any clock).
  RenewalScheduler(const Clock& clock, unsigned workers);
  /// Stops and joins the threads.
  ~RenewalScheduler();
  RenewalScheduler(const RenewalScheduler&) = delete;
  RenewalScheduler& operator=(const RenewalScheduler&) = delete;

  /// Runs `lease->tick(generation)` at or soon after `due`. With `batchable`, the tick may run
  /// together with other due ones so that their store sends the renewals as one batch, and up
  /// to `early` before `due` so that renewals due close together go in one batch.
  void schedule(std::weak_ptr<LeaseState> lease, time_point due, std::uint64_t generation,
                bool batchable = false, duration early = {});

  /// Runs `fn` on a worker as soon as possible (loss signals reported by stores).
  void post(std::function<void()> fn);
  /// Runs `fn` on a worker at or soon after `due` (timers of asynchronous operations: `fn`
  /// checks whether it still matters). `fn` must not block.
  void post_at(time_point due, std::function<void()> fn);

  /// Entries waiting in the heap (for tests and benchmarks).
  std::size_t pending() const;

  /// Runs, on the calling thread, every posted job and every tick due at the clock's now
  /// (batchable ones in batches). Returns how many jobs and ticks it ran. For schedulers
  /// without threads.
  std::size_t run_due();

  /// Stops and joins the threads (at exit, in the process that started them). Idempotent.
  void shutdown();

  /// Most renewals one batch carries.
  static constexpr std::size_t kMaxBatch = 256;

 private:
  struct Entry {
    time_point due;
    std::uint64_t seq;
    std::weak_ptr<LeaseState> lease;
    std::uint64_t generation;
    bool batchable;
    duration early;
    std::function<void()> job;  // A timer of post_at (instead of a lease tick).
    bool operator>(const Entry& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };
  using Due = std::vector<std::pair<std::shared_ptr<LeaseState>, std::uint64_t>>;

  // Moves every entry due at `now` to ready_ / due_batchable_; returns how many workers to
  // wake. Requires mu_.
  std::size_t collect_due_locked(time_point now);
  // Takes up to kMaxBatch due batchable ticks. Requires mu_.
  Due take_batch_locked();
  // Runs due ticks, sending the renewals of each store object as one batch.
  static void tick_together(Due& due) noexcept;
  void timer_loop();
  void worker_loop();

  const Clock& clock_;
  const pid_t pid_ = current_pid();
  mutable std::mutex mu_;
  std::condition_variable timer_cv_, work_cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::deque<std::function<void()>> ready_;
  std::deque<Entry> due_batchable_;  // Due ticks that a worker takes together.
  std::uint64_t seq_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dlock::detail
