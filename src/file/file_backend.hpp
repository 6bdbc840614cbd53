// The embedded store `file://[/dir][?sync=bool]`: see include/dlock/file.hpp for what it
// guarantees and lock_files.hpp for how the files and kernel locks achieve it.
#pragma once

#include <memory>

#include "core/backend.hpp"
#include "dlock/file.hpp"

namespace dlock::detail {

/// Prepares the directory and starts its watch. Throws like `dlock::open(FileConfig)`.
std::shared_ptr<Backend> make_file_backend(const FileConfig& config);

}  // namespace dlock::detail
