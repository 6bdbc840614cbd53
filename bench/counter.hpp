// The deliberately non-atomic counter of workloads R3/E3/P3: a plain read then write in the store,
// through its own raw client (not dlock), so only the lock protects it.
#pragma once

#include <memory>
#include <string>

namespace bench {

class Counter {
 public:
  virtual ~Counter() = default;
  virtual long get() = 0;
  virtual void set(long v) = 0;
};

/// A counter in Redis key `key` on HOST:PORT (hiredis, one connection).
std::unique_ptr<Counter> make_redis_counter(const std::string& host_port, const std::string& key);
/// A counter in etcd key `key` on HOST:PORT (gRPC KV Range/Put). Throws if this build has no
/// etcd support.
std::unique_ptr<Counter> make_etcd_counter(const std::string& host_port, const std::string& key);
/// A counter in PostgreSQL table dlock_bench_counter, row `key`, through libpq URI `uri` (one
/// connection). Throws if this build has no PostgreSQL support.
std::unique_ptr<Counter> make_pg_counter(const std::string& uri, const std::string& key);

}  // namespace bench
