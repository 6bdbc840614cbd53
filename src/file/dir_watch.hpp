// Change notification for the file store: one inotify watch on the store directory and one
// thread per open store that turns events into per-lock version numbers. Waiters remember a
// lock's version before their attempt and sleep until it changes (no polling, and no missed
// wake-up: an event after the attempt always bumps the version).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "dlock/context.hpp"

namespace dlock::detail {

class DirWatch {
 public:
  /// Starts watching `dir`. Throws `Error(unavailable)` when inotify is not available (e.g.
  /// the per-user instance limit is reached).
  explicit DirWatch(const std::filesystem::path& dir);
  /// Stops and joins the thread.
  ~DirWatch();
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;

  /// The change counter of the lock with file stem `stem`.
  std::uint64_t version(const std::string& stem);
  /// Blocks until the version of `stem` differs from `seen` (true), or `until` passes or
  /// `ctx` ends (false).
  bool wait_change(const std::string& stem, std::uint64_t seen, const Context& ctx,
                   std::chrono::steady_clock::time_point until);

 private:
  void run();
  std::uint64_t version_locked(const std::string& stem) const;

  int inotify_fd_ = -1;
  int stop_fd_ = -1;
  std::mutex mu_;
  std::condition_variable_any changed_;
  std::unordered_map<std::string, std::uint64_t> versions_;
  std::uint64_t epoch_ = 0;  ///< Bumped on queue overflow: every lock may have changed.
  std::thread thread_;
};

}  // namespace dlock::detail
