#include "fault/fenced_register.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dlock::fault {
namespace {

class LockedFile {
 public:
  explicit LockedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw std::runtime_error("register: " + path);
  }
  ~LockedFile() { ::close(fd_); }  // Closing drops the flock.
  std::uint64_t read_value() const {
    char buf[32] = {};
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    return n > 0 ? std::strtoull(buf, nullptr, 10) : 0;
  }
  void write_value(std::uint64_t v) {
    std::string s = std::to_string(v) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, s.data(), s.size(), 0) < 0) {
      throw std::runtime_error("register write failed");
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace

bool FencedRegister::write(std::uint64_t token) {
  LockedFile f(path_);
  if (token <= f.read_value()) return false;  // A repeated token is as stale as a lower one.
  f.write_value(token);
  return true;
}

std::uint64_t FencedRegister::highest() const { return LockedFile(path_).read_value(); }

}  // namespace dlock::fault
