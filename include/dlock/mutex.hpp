// dlock/mutex.hpp: a distributed mutex with the standard Lockable / TimedLockable shape, so
// `std::unique_lock`, `std::scoped_lock` and `std::lock` work with it.
//
// `lock()` waits for the store lock (throwing `dlock::Error` on store failure, as
// `std::mutex::lock` throws `std::system_error`); `try_lock()` makes one attempt (returns
// false on any failure); `unlock()` is noexcept. The grant is auto-renewed while held, and its
// loss is signalled through `lost_token()`. One `Mutex` object may be shared by the threads of
// a process: they exclude each other through the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>

#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// A named lock in a store, usable as a standard mutex.
class DLOCK_API Mutex {
 public:
  /// A mutex for `key` in `store`. `opts.wait` is ignored (each call says how long it waits)
  /// and `opts.auto_renew` is forced on.
  Mutex(Store store, std::string key, LockOptions opts = {});
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  /// Releases the grant if still held.
  ~Mutex();

  /// Blocks until acquired. Throws `dlock::Error` (a `std::system_error`) on store failure.
  void lock();
  /// One attempt; false if held elsewhere or the store failed.
  bool try_lock() noexcept;
  /// Releases; never throws (a grant that cannot be released expires by its TTL).
  void unlock() noexcept;

  /// Waits up to `d`; false on timeout or store failure.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock_until(std::chrono::steady_clock::now() + d);
  }
  /// Waits until `tp` (of any clock); false on timeout or store failure.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) {
    auto left = tp - Clock::now();
    auto steady = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
    return try_lock_steady(steady);
  }

  /// The fencing token of the current grant (0 when not held).
  std::uint64_t fencing_token() const;
  /// Stopped when the current grant is lost (a never-stopped token when not held).
  std::stop_token lost_token() const;
  /// The key.
  const std::string& key() const noexcept { return key_; }

 private:
  bool try_lock_steady(std::chrono::steady_clock::time_point deadline) noexcept;
  void adopt(Lease lease);

  Store store_;
  std::string key_;
  LockOptions opts_;
  mutable std::mutex mu_;  // Guards lease_ only; never held while talking to the store.
  Lease lease_;
};

}  // namespace dlock
