// The one renewal scheduler of the process.
//
// A min-heap of (due time, lease) on one timer thread, plus a few worker threads that run the
// due work (a renewal round trip, or the loss signal when validity ended). Leases are held by
// weak_ptr: a released or destroyed lease's entries are skipped. A lease re-schedules itself
// after each tick, so the heap holds about one entry per held lease.
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
#include <vector>

#include "core/fork_guard.hpp"

namespace dlock::detail {

class LeaseState;

class RenewalScheduler {
 public:
  using clock = std::chrono::steady_clock;

  /// The process-wide instance (threads start on first use, stop at exit; never destroyed).
  static RenewalScheduler& instance();

  /// Runs `lease->tick(generation)` on a worker at or soon after `due`. With `batchable`,
  /// the tick may run together with other due ones (`LeaseState::tick_together`), so that
  /// their store sends the renewals as one batch, and up to `early` before `due` so that
  /// renewals due close together go in one batch.
  void schedule(std::weak_ptr<LeaseState> lease, clock::time_point due, std::uint64_t generation,
                bool batchable = false, clock::duration early = {});

  /// Runs `fn` on a worker as soon as possible (used for loss signals reported by stores).
  void post(std::function<void()> fn);

  /// Entries waiting in the heap (for tests and benchmarks).
  std::size_t pending() const;

  RenewalScheduler(const RenewalScheduler&) = delete;
  RenewalScheduler& operator=(const RenewalScheduler&) = delete;

  /// Stops and joins the threads (at exit, in the process that started them).
  void shutdown();

 private:
  explicit RenewalScheduler(unsigned workers);
  struct Entry {
    clock::time_point due;
    std::uint64_t seq;
    std::weak_ptr<LeaseState> lease;
    std::uint64_t generation;
    bool batchable;
    clock::duration early;
    bool operator>(const Entry& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };
  static constexpr std::size_t kMaxBatch = 256;  // Renewals a worker sends as one batch.
  void timer_loop();
  void worker_loop();

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
