// "Holder alive" signals through the kernel: one byte lock per held grant.
//
// The store directory has one file, `alive`. A process keeps ONE open file description of
// it (per open store) and, for each grant it holds, an OFD write lock on one byte of it at a
// random offset (the grant's slot, recorded in the lock's state file). The kernel drops
// those locks when the process dies, however it dies, so "record unexpired but its slot
// unlocked" means the holder crashed and the lock is free at once. A slot per grant (not
// per key) means a live holder whose TTL passed does not block the next holder's slot; one
// descriptor per process (not per grant) means holding many locks costs no file
// descriptors. Checkers test a slot from a separate, read-only description (F_OFD_GETLK),
// so closing it generates no IN_CLOSE_WRITE; a holder process that exits does, which wakes
// waiters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "file/lock_files.hpp"

namespace dlock::detail {

/// The name of the slot file in the store directory.
inline constexpr const char* kAliveFile = "alive";

class AliveSlots {
 public:
  explicit AliveSlots(std::filesystem::path dir) : path_(std::move(dir) / kAliveFile) {}

  /// Locks a fresh slot for a grant of `key` (for errors). Throws `Error`.
  std::uint64_t claim(const std::string& key);
  /// Records that `token`'s grant holds `slot` (claimed before).
  void keep(const std::string& token, std::uint64_t slot);
  /// Unlocks a slot that was claimed but never kept.
  void unclaim(std::uint64_t slot) noexcept;
  /// Unlocks the slot of `token`, if this process holds one.
  void drop(const std::string& token) noexcept;
  /// Unlocks every slot of this store object.
  void drop_all() noexcept;

  /// Whether any process holds `slot` (one open + F_OFD_GETLK). Throws `Error`.
  bool alive(std::uint64_t slot, const std::string& key) const;

 private:
  void unlock_locked(std::uint64_t slot) noexcept;

  std::filesystem::path path_;
  std::mutex mu_;
  UniqueFd holder_;  ///< Opened at the first claim; O_RDWR, close-on-exec.
  std::map<std::string, std::uint64_t> by_token_;
  std::set<std::uint64_t> used_;  ///< Our own slots: our OFD would not see them as conflicts.
};

}  // namespace dlock::detail
