// dlock/file.hpp: the embedded store `file://`, for processes on one host, with no server.
//
// Locks live as small files in one directory (default `$XDG_RUNTIME_DIR/dlock`, else
// `/tmp/dlock-<uid>`, created with mode 0700). Guarantees:
//  - mutual exclusion between threads and processes of the host (kernel file locks);
//  - a holder that dies (crash, `kill -9`) frees its lock at once: the kernel drops its
//    open file description lock, and waiters are woken through inotify;
//  - a holder that stops renewing loses the lock after its TTL, like on every other store;
//  - fencing tokens strictly increase per lock for as long as the directory lives (the
//    counter is kept in the lock's state file, written atomically and fsynced);
//  - waiting uses inotify, never polling.
// The directory must be owned by the calling user and not writable by group or others.
// Network file systems (NFS) are not supported: their lock and inotify semantics differ.
#pragma once

#include <filesystem>

#include "dlock/context.hpp"
#include "dlock/export.hpp"
#include "dlock/store.hpp"

namespace dlock {

/// Where and how the embedded store keeps its locks. URL form: `file:///dir?sync=false`
/// (`file://` alone means the default directory).
struct FileConfig {
  /// The directory of the lock files. Empty (default): `default_file_store_dir()`. Created
  /// (mode 0700) when missing; its parent must exist.
  std::filesystem::path dir{};
  /// fsync each state file before it replaces the old one, so fencing tokens survive a power
  /// loss (on tmpfs this is free). Default true. Off: a crash of the machine may lose the
  /// last few fencing increments of a disk-backed directory.
  bool sync = true;
};

/// The default directory: `$XDG_RUNTIME_DIR/dlock` when that variable names an absolute
/// path, else `/tmp/dlock-<uid>`. Does not block; never throws.
DLOCK_API std::filesystem::path default_file_store_dir();

/// Opens the embedded store in `config.dir` (no round trip: a few system calls). Creates the
/// directory when missing. Throws `Error`: `auth_failed` when the directory belongs to another
/// user or is writable by group/others (someone else could forge or break locks there),
/// `invalid_argument` when the path is not a directory, `unavailable` when it cannot be
/// created. The inotify watch that waiters use starts with the first acquisition (which
/// throws `unavailable` if inotify cannot watch the directory).
DLOCK_API Store open(const FileConfig& config);

}  // namespace dlock
