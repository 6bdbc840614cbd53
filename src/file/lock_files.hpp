// The files of one lock in the store directory.
//
// For key K (hex-encoded into the stem "k-<hex(K)>", so any byte is safe in a file name):
//  - <stem>.state  the record (LockState), replaced atomically: written to a temporary file,
//                  fsynced, renamed over. The temporary's name says what the write does:
//                  "<stem>.h<rand>" leaves the lock held (acquire, renew), "<stem>.f<rand>"
//                  frees it (release, force release). inotify reports the temporary's name
//                  with IN_MOVED_FROM, so waiters wake only when a lock becomes free.
//  - <stem>.guard  a short exclusive OFD lock on it serializes every read-modify-write of
//                  the record (held for a few system calls, never while waiting).
// Whether the holder is alive is told by its slot in the directory's `alive` file
// (alive_slots.hpp).
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
/// The stem of a temporary "<stem>.f<rand>" (a write that frees the lock), or nullopt.
std::optional<std::string> stem_of_free_write(const std::string& name);
/// The stem of "<stem>.state", or nullopt.
std::optional<std::string> stem_of_state_file(const std::string& name);

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

 private:
  std::filesystem::path dir_;
  std::string key_;
  std::string stem_;
  bool sync_;
};

}  // namespace dlock::detail
