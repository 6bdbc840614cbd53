// The local line of waiters: within one store object, at most one waiter per key talks to the
// store at a time; the others wait in FIFO order in-process. A release then costs the store
// one attempt from this process instead of one per waiting thread (no herd), and waiters of
// one process are served in arrival order.
#pragma once

#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "dlock/context.hpp"

namespace dlock::detail {

class LocalQueue {
  // One waiting thread, with its own condition variable so a hand-over wakes one thread.
  struct Waiter {
    std::condition_variable_any cv;
    bool head = false;
    std::function<void()> on_head;  // Asynchronous waiters: told instead of woken.
  };
  using Line = std::list<Waiter>;

 public:
  /// Holding the head of a line; passes it to the next waiter when destroyed.
  class Turn {
   public:
    Turn() = default;
    Turn(Turn&& o) noexcept : q_(o.q_), key_(std::move(o.key_)), it_(o.it_) { o.q_ = nullptr; }
    Turn& operator=(Turn&&) = delete;
    ~Turn() {
      if (q_) q_->leave(key_, it_);
    }
    /// False when the line was left because the context ended.
    explicit operator bool() const noexcept { return q_ != nullptr; }

   private:
    friend class LocalQueue;
    Turn(LocalQueue* q, std::string key, Line::iterator it)
        : q_(q), key_(std::move(key)), it_(it) {}
    LocalQueue* q_ = nullptr;
    std::string key_;
    Line::iterator it_;
  };

  /// Waits until the caller heads `key`'s line, or `ctx` ends (then returns an empty Turn:
  /// the caller reports the timeout or cancellation itself).
  Turn enter(const std::string& key, const Context& ctx);

  /// Joins `key`'s line without blocking. `on_head` runs once the caller heads the line: at
  /// once on this thread when the line was empty, else on the thread whose turn ends (so it
  /// must only queue work). The Turn leaves the line when destroyed, head or not.
  Turn join(const std::string& key, std::function<void()> on_head);

  /// How many callers are in `key`'s line, its head included.
  std::size_t size(const std::string& key) const;

 private:
  void leave(const std::string& key, Line::iterator it);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Line> lines_;
};

}  // namespace dlock::detail
