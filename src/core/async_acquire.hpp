// The asynchronous driver of the waiting loop (AcquireFsm): the same machine as the blocking
// `StoreCore::acquire`, with the session's asynchronous calls, timers instead of sleeps and a
// place in the store object's local line that holds no thread. An acquisition that waits holds
// no thread at all where the store waits natively (`AcquireSession::async_wait`); elsewhere it
// is woken by its backoff timer.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "core/acquire_fsm.hpp"
#include "core/local_queue.hpp"
#include "dlock/lease.hpp"

namespace dlock::detail {

class StoreCore;

class AsyncAcquire : public std::enable_shared_from_this<AsyncAcquire> {
 public:
  /// Called once with the lease, nothing (one attempt lost) or the error, on a dlock thread
  /// (or on the starting thread, for an error found before anything was sent).
  using Done = std::function<void(std::exception_ptr, std::optional<Lease>)>;

  /// Starts an acquisition of `key` on `core`; `single_attempt` makes one attempt.
  static std::shared_ptr<AsyncAcquire> start(std::shared_ptr<StoreCore> core, std::string key,
                                             const LockOptions& opts, const Context& ctx,
                                             bool single_attempt, Done done);

  /// Ends the acquisition with `errc::cancelled` (a grant that arrives meanwhile is released).
  void cancel() noexcept { stop_.request_stop(); }

 private:
  using Step = AcquireFsm::Step;
  AsyncAcquire(std::shared_ptr<StoreCore> core, Done done);
  void begin();                // At the head of the line (or without a line): start talking.
  void run(Step step);         // Does what the machine says next.
  void wait(Step step);        // A wait, natively or on a timer.
  void on_stop_or_deadline();  // Leaves the line if still in it.
  void finish(std::exception_ptr error, std::optional<Lease> lease);
  void post(std::function<void(AsyncAcquire&)> fn);  // Continues on the worker pool.

  const std::shared_ptr<StoreCore> core_;
  Done done_;
  std::stop_source stop_;
  std::optional<AcquireFsm> fsm_;
  std::unique_ptr<AcquireSession> session_;
  std::optional<std::stop_callback<std::function<void()>>> link_, watch_stop_;

  std::mutex mu_;  // Guards the phase and the line.
  enum class Phase { line, talking, done } phase_ = Phase::talking;
  std::optional<LocalQueue::Turn> turn_;
  std::shared_ptr<AsyncAcquire> self_;            // Keeps the operation alive until it finishes.
  std::shared_ptr<std::atomic<bool>> wait_once_;  // The current timer wait's completion.
};

}  // namespace dlock::detail
