// The one place where the file store turns system errors into dlock errors.
#pragma once

#include <string>

#include "dlock/error.hpp"

namespace dlock::detail {

/// The errc for an errno value of a file-store system call: EACCES/EPERM/EROFS ->
/// auth_failed, ENOENT/ENOTDIR/ELOOP -> invalid_argument, ENOSPC/EIO/EMFILE/... ->
/// unavailable, EINTR-free others -> protocol_error.
errc file_errc(int err) noexcept;

/// Throws `Error(file_errc(err), "file", key, step, detail + ": " + strerror(err))`.
[[noreturn]] void throw_file_error(int err, const std::string& key, const std::string& step,
                                   const std::string& detail);

}  // namespace dlock::detail
