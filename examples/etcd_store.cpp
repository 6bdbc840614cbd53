// The etcd stores from a typed config: the FIFO mutex (compatible with `etcdctl lock`) and the
// seed's transaction lock. Fencing tokens are the keys' create revisions.
//   example_etcd_store [endpoint]          (needs etcd; default 127.0.0.1:2379)
#include <dlock/dlock.hpp>
#include <dlock/etcd.hpp>
#include <iostream>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  dlock::EtcdConfig cfg;
  cfg.endpoints = {argc > 1 ? argv[1] : "127.0.0.1:2379"};
  cfg.prefix = "example/";
  try {
    dlock::Store fifo = dlock::open(cfg);  // Mode::fifo: waiters served in arrival order.
    cfg.mode = dlock::EtcdConfig::Mode::txn;
    dlock::Store txn = dlock::open(cfg);
    dlock::LockService svc(fifo, {.ttl = 10s});
    svc.with_lock(dlock::Context::with_timeout(10s), "deploy", [](const dlock::Lease& l) {
      std::cout << "deploying under the FIFO mutex, fencing token " << l.fencing_token() << "\n";
    });
    dlock::Lease l = txn.acquire(dlock::Context::with_timeout(10s), "migrate", {.ttl = 10s});
    std::cout << "transaction lock held, fencing token " << l.fencing_token() << "\n";
  } catch (const dlock::Error& e) {
    std::cerr << e.what() << "\n";
    return e.code() == dlock::errc::unavailable ? 2 : 1;
  }
  return 0;
}
