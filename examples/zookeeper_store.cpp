// The ZooKeeper store: a lock node per key, lock info, a waiter woken by its predecessor's
// watch.
//   example_zookeeper_store [url]   (needs a server; default zk://127.0.0.1:2181/dlock-example)
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const std::string url = argc > 1 ? argv[1] : "zk://127.0.0.1:2181/dlock-example";
  try {
    dlock::Store store = dlock::open(url);
    dlock::Lease lease = store.acquire(dlock::Context::with_timeout(5s), "report",
                                       {.ttl = 10s, .auto_renew = true, .metadata = "example"});
    auto info = store.inspect({}, "report");
    std::cout << "held by pid " << info.owner.pid << ", fencing token (czxid) "
              << info.fencing_token << "\n";
    std::jthread waiter([&] {
      dlock::Store other = dlock::open(url);  // Another session, as another process would.
      dlock::Lease next = other.acquire(dlock::Context::with_timeout(10s), "report");
      std::cout << "the waiter got it with fencing token " << next.fencing_token() << "\n";
    });
    std::this_thread::sleep_for(500ms);
    lease.release();  // Deleting the holder's node fires the waiter's watch at once.
  } catch (const dlock::Error& e) {
    std::cerr << e.what() << "\n";
    return e.code() == dlock::errc::unavailable ? 2 : 1;
  }
  return 0;
}
