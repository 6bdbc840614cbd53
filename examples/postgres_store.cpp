// The PostgreSQL store: the lock table made on first use, lock info, a waiter woken by
// LISTEN/NOTIFY.
//   example_postgres_store [url]   (needs a server; default postgres://127.0.0.1:5432/postgres,
//                                   credentials from the URL or libpq's PGUSER/PGPASSWORD)
#include <dlock/dlock.hpp>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const std::string base = argc > 1 ? argv[1] : "postgres://127.0.0.1:5432/postgres";
  const std::string url =
      base + (base.find('?') == std::string::npos ? "?" : "&") + "table=example_locks";
  try {
    dlock::Store store = dlock::open(url);
    dlock::Lease lease = store.acquire(dlock::Context::with_timeout(5s), "report",
                                       {.ttl = 10s, .auto_renew = true, .metadata = "example"});
    auto info = store.inspect({}, "report");
    std::cout << "held by pid " << info.owner.pid << ", fencing token " << info.fencing_token
              << "\n";
    std::jthread waiter([&] {
      dlock::Store other = dlock::open(url);  // Other connections, as another process would.
      dlock::Lease next = other.acquire(dlock::Context::with_timeout(10s), "report");
      std::cout << "the waiter got it with fencing token " << next.fencing_token() << "\n";
    });
    std::this_thread::sleep_for(500ms);
    lease.release();  // The waiter marked the row: the release notifies it at once.
  } catch (const dlock::Error& e) {
    std::cerr << e.what() << "\n";
    return e.code() == dlock::errc::unavailable ? 2 : 1;
  }
  return 0;
}
