// Test support: child processes, free loopback ports, temporary directories. Used by the
// fixtures that start real stores (redis-server, etcd, ...) on loopback.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dlock::test {

/// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "dlock");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

/// Whether 127.0.0.1:`port` accepts a TCP connection within `timeout`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

/// A child process; SIGKILLed and reaped on destruction if still running.
class Child {
 public:
  Child() = default;
  /// Starts `argv` (argv[0] looked up in PATH) with stdout+stderr appended to `log_path`
  /// (or /dev/null when empty). Throws std::runtime_error if it cannot start.
  Child(const std::vector<std::string>& argv, const std::string& log_path = {});
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running();
  /// Sends `sig`.
  void signal(int sig);
  /// SIGTERM, then SIGKILL after `grace`; reaps. Returns the wait status (or -1).
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  /// Waits up to `timeout` for exit; returns the wait status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

/// Whether an executable named `name` is on PATH.
bool have_program(const std::string& name);

/// The contents of a file, or "" (for showing server logs in failures).
std::string read_file(const std::filesystem::path& p);

}  // namespace dlock::test
