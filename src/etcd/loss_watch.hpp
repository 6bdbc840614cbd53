// The held keys of one store object, watched so that a lost grant is reported at once.
//
// A grant registers when it is won and unregisters when it is released or destroyed. Once it
// has been held for `kWatchAfter`, its key gets a persistent watch of DELETE events on the
// client's watch stream, starting at the revision after the one at which the grant was seen
// held: nothing is missed however late the watch is made, and the many locks held for less
// than that cost no watch at all. A DELETE of the key (a force release by anyone, `etcdctl
// del`, the revocation or expiry of its lease) reports the grant lost (`report_lost`), and so
// does a keep-alive answered with TTL <= 0 for its lease.
//
// When a watch ends (the stream broke, etcd compacted or cancelled it), one transaction
// re-reads every such key as soon as etcd answers again; a key that is gone or was re-created
// is reported, and the others are watched again from the revision after that read. So a
// DELETE while the stream was down is not missed. One worker thread (started on first use)
// makes, cancels and resumes the watches: acquiring and releasing never wait for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "etcd/watch_hub.hpp"

namespace dlock::detail::etcd {

class Client;
struct EtcdGrant;

class LossWatch : public std::enable_shared_from_this<LossWatch> {
 public:
  using clock = std::chrono::steady_clock;
  /// How long a grant is held before its key is watched.
  static constexpr std::chrono::milliseconds kWatchAfter{50};

  explicit LossWatch(Client& client);
  ~LossWatch();
  LossWatch(const LossWatch&) = delete;
  LossWatch& operator=(const LossWatch&) = delete;

  /// Watches `g` from now until `remove(g)`. `held_at` is a revision at which etcd had the
  /// grant's key with its create revision. Never blocks on etcd.
  void add(EtcdGrant& g, std::int64_t held_at);
  /// Stops watching `g`; from its return `g` is never reported. Idempotent; never blocks on
  /// etcd.
  void remove(EtcdGrant& g) noexcept;
  /// A keep-alive of `lease` was answered with TTL <= 0: the grants on it are lost.
  void lease_gone(std::int64_t lease) noexcept;
  /// Stops the worker (cancelling a re-read in flight). Idempotent.
  void close() noexcept;

 private:
  enum class State {
    waiting,   // To watch from `from` at `watch_at`.
    creating,  // The worker is making its watch.
    watching,  // Its watch is established.
    unsure,    // Its watch ended: re-read the key, then watch again.
    lost,      // Reported; nothing more to do.
  };
  struct Entry {
    EtcdGrant* grant;
    std::string key;
    std::int64_t create_revision;
    std::int64_t from;
    clock::time_point watch_at;
    State state = State::waiting;
    std::uint64_t attempt = 0;  // Which watch of this entry the notes come from.
    std::shared_ptr<WatchHub::Slot> slot{};
  };

  void run();
  void recheck(std::unique_lock<std::mutex>& lk);
  void create_due(std::unique_lock<std::mutex>& lk, clock::time_point now);
  void noted(std::uint64_t id, std::uint64_t attempt, WatchHub::Note note) noexcept;
  void report_locked(std::uint64_t id) noexcept;
  std::chrono::milliseconds next_backoff_locked();

  Client& client_;
  // Guards everything below. Held while reporting, and taken by `remove` (a grant's
  // destructor), so a grant is reported only while it lives (core posts the report with its
  // own reference to the lease: the grant never ends inside a report).
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, Entry> entries_;
  std::uint64_t next_id_ = 1;
  std::vector<std::shared_ptr<WatchHub::Slot>> cancels_;
  clock::time_point wake_at_ = clock::time_point::max();    // The worker's next planned wake-up.
  clock::time_point asked_for_ = clock::time_point::max();  // A wake-up an `add` asked for.
  clock::time_point recheck_at_{};                          // The next re-read: not before this.
  clock::time_point create_at_{};  // After a failed watch creation: not before this.
  std::chrono::milliseconds backoff_{0};
  bool closed_ = false;
  std::stop_source stop_;
  std::thread worker_;
};

}  // namespace dlock::detail::etcd
