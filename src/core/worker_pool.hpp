// A small pool of threads for the blocking calls that asynchronous operations make on stores
// without a native asynchronous form (one attempt's round trip, a release, a renewal), so that
// no caller's thread (an io_context's, say) blocks on them. Jobs run in FIFO order.
#pragma once

#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/fork_guard.hpp"

namespace dlock::detail {

class WorkerPool {
 public:
  /// The process-wide pool (threads start on first use and stop at exit).
  static WorkerPool& process_wide();

  explicit WorkerPool(unsigned threads);
  /// Runs the queued jobs, then joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Queues `job` (it must not throw). Never blocks.
  void post(std::function<void()> job);
  /// Stops after the queued jobs. Idempotent.
  void shutdown();

 private:
  void loop();
  const pid_t pid_ = current_pid();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dlock::detail
