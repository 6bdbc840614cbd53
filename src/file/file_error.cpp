#include "file/file_error.hpp"

#include <cerrno>
#include <cstring>

namespace dlock::detail {

errc file_errc(int err) noexcept {
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return errc::auth_failed;
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EISDIR:
      return errc::invalid_argument;
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOLCK:
      return errc::unavailable;
    default:
      return errc::protocol_error;
  }
}

void throw_file_error(int err, const std::string& key, const std::string& step,
                      const std::string& detail) {
  throw Error(file_errc(err), "file", key, step, detail + ": " + std::strerror(err));
}

}  // namespace dlock::detail
