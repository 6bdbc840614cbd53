// The files of one lock in the store directory, and the kernel locks on them.
//
// For key K (hex-encoded into the stem "k-<hex(K)>", so any byte is safe in a file name):
//  - <stem>.state  the record (LockState), replaced atomically (write temp, fsync, rename);
//  - <stem>.guard  a short exclusive OFD lock on it serializes every read-modify-write of
//                  the record (held for microseconds, never while waiting);
//  - <stem>.alive  each grant holds an OFD write lock on ONE byte of it, at offset = its
//                  fencing token, for as long as it is held. The kernel drops that lock
//                  when the holder's process dies, so "record unexpired but byte unlocked"
//                  means the holder crashed and the lock is free. Per-grant bytes mean a
//                  live holder whose TTL passed does not block the next holder's byte.
// Only holders open .alive for writing, so its IN_CLOSE_WRITE event means "a holder went
// away" to the waiters' inotify watch; checkers open it read-only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "dlock/context.hpp"
#include "file/lock_state.hpp"

namespace dlock::detail {

/// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// Longest key the file store takes: its hex form plus suffixes must fit NAME_MAX (255).
inline constexpr std::size_t kFileMaxKeyBytes = 120;

/// The stem of `key`'s files.
std::string file_stem(const std::string& key);
/// The key of a "<stem>.state" file name, or nullopt for other names.
std::optional<std::string> key_of_state_file(const std::string& name);
/// The stem of a lock file name ending in `.state` or `.alive`, or nullopt.
std::optional<std::string> stem_of_watched_file(const std::string& name);

class LockFiles {
 public:
  LockFiles(std::filesystem::path dir, std::string key, bool sync);

  const std::string& key() const { return key_; }

  /// Holds the guard lock until destroyed. Waits (in short sleeps: it is held only for a
  /// few system calls) until `ctx` ends: throws timeout/cancelled.
  UniqueFd lock_guard(const Context& ctx) const;

  /// Reads the record; a missing file is a free lock with fencing 0. Throws protocol_error
  /// for a file that is not a state record.
  LockState read() const;
  /// Replaces the record atomically (fsync first when `sync`). Requires the guard.
  void write(const LockState& s) const;

  /// Takes the one-byte alive lock of `fencing`; the returned fd keeps it.
  UniqueFd hold_alive(std::uint64_t fencing) const;
  /// Whether some process holds the alive byte of `fencing`.
  bool alive(std::uint64_t fencing) const;

  /// Whether `s` names a holder that is unexpired and still alive.
  bool held(const LockState& s, std::int64_t now_ns) const {
    return s.unexpired(now_ns) && alive(s.fencing);
  }

 private:
  std::filesystem::path dir_;
  std::string key_;
  std::string stem_;
  bool sync_;
};

}  // namespace dlock::detail
