// The Redis store from a typed config: fencing, lock info, a waiter woken by pub/sub.
//   example_redis_store [host] [port]      (needs a Redis server; default 127.0.0.1:6379)
#include <dlock/dlock.hpp>
#include <dlock/redis.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  dlock::RedisConfig cfg;
  cfg.host = argc > 1 ? argv[1] : "127.0.0.1";
  cfg.port = argc > 2 ? static_cast<std::uint16_t>(std::stoi(argv[2])) : 6379;
  cfg.prefix = "example:";
  try {
    dlock::Store store = dlock::open(cfg);
    dlock::Lease lease = store.acquire(dlock::Context::with_timeout(5s), "report",
                                       {.ttl = 10s, .auto_renew = true, .metadata = "example"});
    auto info = store.inspect({}, "report");
    std::cout << "held by pid " << info.owner.pid << ", fencing token " << info.fencing_token
              << "\n";
    std::jthread waiter([&] {
      dlock::Store other = dlock::open(cfg);  // Another connection, as another process would.
      dlock::Lease next = other.acquire(dlock::Context::with_timeout(10s), "report");
      std::cout << "the waiter got it with fencing token " << next.fencing_token() << "\n";
    });
    std::this_thread::sleep_for(200ms);
    lease.release();  // Publishes: the waiter wakes at once.
  } catch (const dlock::Error& e) {
    std::cerr << e.what() << "\n";
    return e.code() == dlock::errc::unavailable ? 2 : 1;
  }
  return 0;
}
