#include "file/lock_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "core/token.hpp"
#include "dlock/error.hpp"
#include "file/file_error.hpp"

namespace dlock::detail {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kStemPrefix = "k-";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

flock one_byte(short type, std::uint64_t offset) {
  flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  return fl;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string file_stem(const std::string& key) {
  std::string out(kStemPrefix);
  for (unsigned char c : key) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<std::string> key_of_state_file(const std::string& name) {
  if (name.rfind(kStemPrefix, 0) != 0 || !ends_with(name, ".state")) return std::nullopt;
  auto hex = std::string_view(name).substr(kStemPrefix.size());
  hex.remove_suffix(6);
  if (hex.empty() || hex.size() % 2 != 0) return std::nullopt;
  std::string key;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key += static_cast<char>(hi * 16 + lo);
  }
  return key;
}

std::optional<std::string> stem_of_free_write(const std::string& name) {
  // "<stem>.f" + 8 hex digits.
  if (name.rfind(kStemPrefix, 0) != 0 || name.size() < 10 || name[name.size() - 10] != '.' ||
      name[name.size() - 9] != 'f') {
    return std::nullopt;
  }
  return name.substr(0, name.size() - 10);
}

std::optional<std::string> stem_of_state_file(const std::string& name) {
  if (name.rfind(kStemPrefix, 0) != 0 || !ends_with(name, ".state")) return std::nullopt;
  return name.substr(0, name.size() - 6);
}

LockFiles::LockFiles(std::filesystem::path dir, std::string key, bool sync)
    : dir_(std::move(dir)), key_(std::move(key)), stem_(file_stem(key_)), sync_(sync) {}

UniqueFd LockFiles::lock_guard(const Context& ctx) const {
  const auto path = dir_ / (stem_ + ".guard");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_file_error(errno, key_, "lock guard", "cannot open " + path.string());
  auto fl = one_byte(F_WRLCK, 0);
  auto pause = std::chrono::microseconds(50);
  while (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) {
    if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
      throw_file_error(errno, key_, "lock guard", "cannot lock " + path.string());
    }
    if (ctx.stop_requested()) throw Error(errc::cancelled, "file", key_, "lock guard");
    if (ctx.expired()) throw Error(errc::timeout, "file", key_, "lock guard");
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(2));
  }
  return fd;
}

LockState LockFiles::read() const {
  const auto path = dir_ / (stem_ + ".state");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return LockState{};
    throw_file_error(errno, key_, "read state", "cannot open " + path.string());
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_file_error(errno, key_, "read state", "cannot read " + path.string());
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  auto s = parse_state(text);
  if (!s) {
    throw Error(errc::protocol_error, "file", key_, "read state",
                path.string() + " is not a dlock state record (remove it to reset the lock)");
  }
  return *s;
}

void LockFiles::write(const LockState& s) const {
  const auto final_path = dir_ / (stem_ + ".state");
  const char kind = s.token.empty() ? 'f' : 'h';
  const auto tmp_path = dir_ / (stem_ + "." + kind + random_token().substr(0, 8));
  const std::string text = serialize_state(s);
  UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) throw_file_error(errno, key_, "write state", "cannot create " + tmp_path.string());
  auto fail = [&](const char* what) {
    int err = errno;
    ::unlink(tmp_path.c_str());
    throw_file_error(err, key_, "write state", std::string(what) + " " + tmp_path.string());
  };
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write");
    done += static_cast<std::size_t>(n);
  }
  if (sync_ && ::fdatasync(fd.get()) != 0) fail("cannot sync");
  if (::close(fd.release()) != 0) fail("cannot close");
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) fail("cannot rename");
}

}  // namespace dlock::detail
