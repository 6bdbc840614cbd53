// The file store's directory: where it is by default and the safety checks before use.
#pragma once

#include <filesystem>

namespace dlock::detail {

/// Creates `dir` (mode 0700) when missing, then checks that it is a directory owned by the
/// effective user and not writable by group or others. Throws `Error` (auth_failed,
/// invalid_argument, unavailable) with a message that says how to fix it.
void prepare_store_dir(const std::filesystem::path& dir);

}  // namespace dlock::detail
