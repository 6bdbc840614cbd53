// The embedded store: locks shared by the processes of one host, freed at once when a holder
// dies, no server. Here a parent and a forked child contend for one lock.
#include <sys/wait.h>
#include <unistd.h>

#include <dlock/dlock.hpp>
#include <dlock/file.hpp>
#include <filesystem>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main() {
  auto dir = std::filesystem::temp_directory_path() / ("dlock-example-" + std::to_string(getpid()));
  dlock::FileConfig cfg{.dir = dir};
  pid_t child = fork();
  // Each process opens its own store object (dlock objects are not shared across fork()).
  dlock::Store store = dlock::open(cfg);
  dlock::Lease l = store.acquire(dlock::Context::with_timeout(10s), "printer", {.ttl = 5s});
  std::cout << (child == 0 ? "child" : "parent") << " prints with fencing token "
            << l.fencing_token() << "\n";
  std::this_thread::sleep_for(100ms);
  l.release();
  if (child == 0) return 0;
  int status = 0;
  waitpid(child, &status, 0);
  std::filesystem::remove_all(dir);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
