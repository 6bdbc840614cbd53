// dlock/shared_mutex.hpp: a distributed read-write lock with the standard SharedLockable /
// SharedTimedLockable shape (and Lockable / TimedLockable for its write side), so
// `std::shared_lock`, `std::unique_lock` and `std::scoped_lock` work with it.
//
// Readers (`lock_shared`) hold together; a writer (`lock`) excludes everyone. On stores that
// serve waiters in arrival order (`Capabilities::fifo`), once a writer waits new readers queue
// behind it, so writers are never starved. Each grant, read or write, has its own fencing
// token (strictly increasing per lock over all grants), is auto-renewed while held, and has a
// loss signal. One object may be shared by the threads of a process: each thread's read grant
// is its own. A thread that holds the read side and asks for the write side gets
// `errc::would_deadlock` (an upgrade would wait for itself); `downgrade()` turns a held write
// grant into a read grant without a gap. Needs a store with `Capabilities::shared_mode`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// A named read-write lock in a store.
class DLOCK_API SharedMutex {
 public:
  /// A read-write lock for `key` in `store`. `opts.wait` and `opts.mode` are ignored (each call
  /// says how long it waits and which side it takes); `opts.auto_renew` is forced on.
  SharedMutex(Store store, std::string key, LockOptions opts = {});
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;
  /// Releases every grant still held.
  ~SharedMutex();

  // ---- the write side (exclusive) ----
  /// Blocks until the write side is held. Throws `dlock::Error` on store failure, and
  /// `errc::would_deadlock` when the calling thread holds the read side.
  void lock();
  /// One attempt; false if held elsewhere, on store failure or when it would deadlock.
  bool try_lock() noexcept;
  /// Releases the write side; never throws.
  void unlock() noexcept;
  /// Waits up to `d`; false on timeout or store failure.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_until(std::chrono::steady_clock::now() + d, false);
  }
  /// Waits until `tp` (of any clock); false on timeout or store failure.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return try_until(steady(tp), false);
  }

  // ---- the read side (shared) ----
  /// Blocks until the calling thread holds the read side. Throws `dlock::Error`.
  void lock_shared();
  /// One attempt; false if a writer holds or waits (on fair stores) or on store failure.
  bool try_lock_shared() noexcept;
  /// Releases the calling thread's read grant; never throws.
  void unlock_shared() noexcept;
  /// Waits up to `d`; false on timeout or store failure.
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d) {
    return try_until(std::chrono::steady_clock::now() + d, true);
  }
  /// Waits until `tp` (of any clock); false on timeout or store failure.
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return try_until(steady(tp), true);
  }

  /// Turns the held write grant into a read grant of the calling thread without a gap (one
  /// round trip). Throws `not_held` when the write side is not held, `unsupported` when the
  /// store cannot (`Capabilities::downgrades`).
  void downgrade();

  /// The fencing token of the calling thread's read grant, else of the write grant (0 when
  /// neither is held).
  std::uint64_t fencing_token() const;
  /// Stopped when that grant is lost (a never-stopped token when none is held).
  std::stop_token lost_token() const;
  /// The key.
  const std::string& key() const noexcept { return key_; }

 private:
  template <class Clock, class Duration>
  static std::chrono::steady_clock::time_point steady(
      const std::chrono::time_point<Clock, Duration>& tp) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(tp - Clock::now());
  }
  bool try_until(std::chrono::steady_clock::time_point deadline, bool shared) noexcept;
  // Takes one side, waiting per `wait` until `ctx` ends. Throws.
  bool take(const Context& ctx, WaitPolicy wait, bool shared);
  void check_no_upgrade(bool shared) const;
  const Lease* mine() const;  // The calling thread's read grant, else the write grant.

  Store store_;
  std::string key_;
  LockOptions opts_;
  mutable std::mutex mu_;  // Guards the leases only; never held while talking to the store.
  Lease writer_;
  std::map<std::thread::id, Lease> readers_;
};

}  // namespace dlock
