#include "file/store_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "dlock/error.hpp"
#include "dlock/file.hpp"
#include "file/file_error.hpp"

namespace dlock {

std::filesystem::path default_file_store_dir() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return std::filesystem::path(runtime) / "dlock";
  return "/tmp/dlock-" + std::to_string(::geteuid());
}

}  // namespace dlock

namespace dlock::detail {

void prepare_store_dir(const std::filesystem::path& dir) {
  const std::string shown = dir.string();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw_file_error(errno, "", "open", "cannot create the store directory " + shown);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw_file_error(errno, "", "open", "cannot inspect the store directory " + shown);
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(errc::invalid_argument, "file", "", "open", shown + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    throw Error(errc::auth_failed, "file", "", "open",
                shown + " belongs to uid " + std::to_string(st.st_uid) + ", not to us (uid " +
                    std::to_string(::geteuid()) +
                    "): another user could forge or break locks there; use a directory of "
                    "your own");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw Error(errc::auth_failed, "file", "", "open",
                shown +
                    " is writable by group or others: anyone could forge or break locks "
                    "there; run `chmod go-w " +
                    shown + "` or use another directory");
  }
}

}  // namespace dlock::detail
