#include "file/alive_slots.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/token.hpp"
#include "dlock/error.hpp"
#include "file/file_error.hpp"

namespace dlock::detail {
namespace {

flock one_byte(short type, std::uint64_t offset) {
  flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  return fl;
}

// A random offset in [1, 2^60]: collisions between grants are astronomically rare, and one
// that happens is detected (the lock attempt fails) and retried.
std::uint64_t random_slot() { return std::stoull(random_token().substr(0, 15), nullptr, 16) + 1; }

}  // namespace

std::uint64_t AliveSlots::claim(const std::string& key) {
  std::lock_guard lk(mu_);
  if (!holder_) {
    holder_ = UniqueFd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!holder_) throw_file_error(errno, key, "acquire", "cannot open " + path_.string());
  }
  for (int tries = 0; tries < 16; ++tries) {
    const std::uint64_t slot = random_slot();
    if (used_.count(slot) != 0) continue;
    auto fl = one_byte(F_WRLCK, slot);
    if (::fcntl(holder_.get(), F_OFD_SETLK, &fl) == 0) {
      used_.insert(slot);
      return slot;
    }
    if (errno != EAGAIN && errno != EACCES) {
      throw_file_error(errno, key, "acquire", "cannot lock a slot of " + path_.string());
    }
  }
  throw Error(errc::protocol_error, "file", key, "acquire", "no free slot in " + path_.string());
}

void AliveSlots::keep(const std::string& token, std::uint64_t slot) {
  std::lock_guard lk(mu_);
  by_token_[token] = slot;
}

void AliveSlots::unlock_locked(std::uint64_t slot) noexcept {
  auto fl = one_byte(F_UNLCK, slot);
  if (holder_) ::fcntl(holder_.get(), F_OFD_SETLK, &fl);
  used_.erase(slot);
}

void AliveSlots::unclaim(std::uint64_t slot) noexcept {
  std::lock_guard lk(mu_);
  unlock_locked(slot);
}

void AliveSlots::drop(const std::string& token) noexcept {
  std::lock_guard lk(mu_);
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return;
  unlock_locked(it->second);
  by_token_.erase(it);
}

void AliveSlots::drop_all() noexcept {
  std::lock_guard lk(mu_);
  for (auto& [token, slot] : by_token_) unlock_locked(slot);
  by_token_.clear();
}

bool AliveSlots::alive(std::uint64_t slot, const std::string& key) const {
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return false;
    throw_file_error(errno, key, "check holder", "cannot open " + path_.string());
  }
  auto fl = one_byte(F_WRLCK, slot);
  if (::fcntl(fd.get(), F_OFD_GETLK, &fl) != 0) {
    throw_file_error(errno, key, "check holder", "cannot test " + path_.string());
  }
  return fl.l_type != F_UNLCK;
}

}  // namespace dlock::detail
