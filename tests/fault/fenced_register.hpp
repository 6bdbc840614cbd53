// A fenced register: the protected resource of the fault suite. It remembers the highest
// fencing token that wrote and rejects writes carrying a lower or equal one. File-backed (one small
// file, serialized with flock), so worker processes share it.
#pragma once

#include <cstdint>
#include <string>

namespace dlock::fault {

class FencedRegister {
 public:
  explicit FencedRegister(std::string path) : path_(std::move(path)) {}
  /// Writes on behalf of `token`: true (accepted) unless this or a higher token already wrote.
  bool write(std::uint64_t token);
  /// The highest token accepted so far.
  std::uint64_t highest() const;

 private:
  std::string path_;
};

}  // namespace dlock::fault
