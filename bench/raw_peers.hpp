// The stores' own limits, measured in the same run as dlock: raw clients doing the minimum
// round trips of an acquire/release pair.
#pragma once

#include <string>
#include <vector>

namespace bench {

struct RawResult {
  long pairs = 0;
  double elapsed_s = 0;
  std::vector<double> lat_us;  // Acquire latency (sequential runs only).
  std::string note;
};

/// R1's limit: `iters` x {SET key token NX PX 10000; EVALSHA compare-and-delete} on one
/// hiredis connection (keys `bench:raw:<i mod 64>`).
RawResult raw_redis_pairs(const std::string& host_port, long iters, long workers);

/// R1 against dlock's own protocol: `iters` x {EVALSHA acquire script; EVALSHA release
/// script} with dlock's keys and arguments, on one blocking hiredis connection. What is left
/// between this and dlock is the client's own cost.
RawResult raw_redis_script_pairs(const std::string& host_port, long iters);

/// Prints dlock's Redis acquire and release scripts and redis-benchmark arguments for them as
/// shell assignments (bench/run.sh evals them for R2's limit). Returns an exit code.
int print_redis_scripts();

/// E1/E2's limit: {Txn create-if-absent Put; Txn compare-value Delete} pairs, sequentially
/// `iters` times (workers == 1) or from `workers` threads for `secs` seconds.
RawResult raw_etcd_pairs(const std::string& host_port, long iters, long workers, double secs);

/// P1/P2's limit: dlock's own acquire and release statements (src/postgres/statements.hpp,
/// same arguments, prepared) from blocking libpq loops on lock table `table` at libpq URI
/// `uri`: sequentially `iters` times on one connection (workers <= 1), or from `workers`
/// threads with a connection each for `secs` seconds.
RawResult raw_pg_pairs(const std::string& uri, const std::string& table, long iters, long workers,
                       double secs);

}  // namespace bench
