// dlock-bench: one workload per invocation, one JSON line on stdout (exit 0 only if ok).
//
//   dlock-bench --workload R1|R2|R3|E1|E2|E3|P1|P2|P3 [--redis HOST:PORT] [--etcd HOST:PORT]
//               [--postgres URI] [--store URL] [--iters N] [--workers N] [--secs S]
//               [--per-worker N] [--ttl S] [--wait S] [--peer dlock|raw|raw-scripts]
//
// `--peer raw` runs the store's own limit for R1 (hiredis SET NX PX + EVALSHA
// compare-and-delete on one connection), E1/E2 (raw Txn acquire + Txn release RPCs) and
// P1/P2 (dlock's own acquire and release statements from blocking libpq loops; `--postgres`
// is a libpq URI such as postgres://user:pass@127.0.0.1:5432/postgres, P's lock table is
// dlock_bench_locks);
// `--peer raw-scripts` runs R1 as a raw hiredis loop of dlock's own acquire and release
// scripts (the protocol's cost without dlock's client).
// See docs/BENCHMARKS.md for the workloads' definitions.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"
#include "dlock/dlock.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Args {
  std::string workload, redis = "127.0.0.1:6379", etcd = "127.0.0.1:2379",
                        postgres = "postgres://127.0.0.1:5432/postgres", store, peer = "dlock";
  long iters = -1, workers = -1, per_worker = -1;
  double secs = 3, ttl_s = 10, wait_s = 30;
};

struct Result {
  bool ok = true;
  long n = 0;
  double elapsed_s = 0;
  std::vector<double> lat_us;  // Acquire latency (R1/E1) or wait (R3/E3).
  long counter = -1, expected = -1, errors = 0, workers = 1;
  std::string unit = "pairs/s", note;
};

double pct(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1)))];
}

constexpr const char* kPgTable = "dlock_bench_locks";

std::string store_url(const Args& a) {
  if (!a.store.empty()) return a.store;
  if (a.workload[0] == 'P') {
    return a.postgres + (a.postgres.find('?') == std::string::npos ? "?" : "&") +
           "table=" + kPgTable;
  }
  return a.workload[0] == 'R' ? "redis://" + a.redis : "etcd://" + a.etcd;
}

// The lock names of a workload: "bench:r1:", "bench/e2/", "bench/p1/"...
std::string key_base(const Args& a) {
  std::string w = a.workload;
  w[0] = static_cast<char>(w[0] - 'A' + 'a');
  return a.workload[0] == 'R' ? "bench:" + w + ":" : "bench/" + w + "/";
}

// Context switches of the whole process so far (voluntary + involuntary): the profile of a
// round trip's thread hand-offs.
long context_switches() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

// Sequential pairs on one store object (R1, E1).
Result sequential(const Args& a, long iters) {
  Result r;
  auto store = dlock::open(store_url(a));
  const auto ttl = std::chrono::milliseconds(static_cast<long>(a.ttl_s * 1000));
  const std::string base = key_base(a);
  r.lat_us.reserve(static_cast<std::size_t>(iters));
  const long switches0 = context_switches();
  auto t0 = clock_type::now();
  for (long i = 0; i < iters; ++i) {
    auto s = clock_type::now();
    auto l = store.try_acquire({}, base + std::to_string(i % 64), {.ttl = ttl});
    r.lat_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
    if (!l) {
      r.errors++;
      continue;
    }
    if (l->release().status != dlock::ReleaseStatus::released) r.errors++;
  }
  r.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  r.n = iters - r.errors;
  auto m = store.metrics();
  char buf[160];
  std::snprintf(buf, sizeof buf, "attempts/pair %.2f; context switches/pair %.1f",
                static_cast<double>(m.acquire_attempts) / std::max<double>(1, r.n),
                static_cast<double>(context_switches() - switches0) / std::max<double>(1, r.n));
  r.note = buf;
  return r;
}

// Parallel pairs on distinct keys through one store object (R2, E2).
Result parallel(const Args& a, long workers, double secs) {
  Result r;
  r.workers = workers;
  auto store = dlock::open(store_url(a));
  const auto ttl = std::chrono::milliseconds(static_cast<long>(a.ttl_s * 1000));
  const std::string base = key_base(a);
  std::atomic<long> pairs{0}, errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  std::vector<clock_type::time_point> ends(static_cast<std::size_t>(workers));
  clock_type::time_point t0;
  for (long w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      while (!go) std::this_thread::yield();
      const auto stop_at = t0 + std::chrono::duration<double>(secs);
      const std::string key = base + std::to_string(w);
      while (clock_type::now() < stop_at) {
        try {
          auto l = store.try_acquire({}, key, {.ttl = ttl});
          if (l && l->release().status == dlock::ReleaseStatus::released) {
            pairs++;
          } else {
            errors++;
          }
        } catch (const std::exception&) {
          errors++;
        }
      }
      ends[static_cast<std::size_t>(w)] = clock_type::now();
    });
  }
  t0 = clock_type::now();
  go = true;
  for (auto& t : threads) t.join();
  r.elapsed_s =
      std::chrono::duration<double>(*std::max_element(ends.begin(), ends.end()) - t0).count();
  r.n = pairs;
  r.errors = errors;
  return r;
}

// Contention on one lock with a non-atomic counter in the store (R3, E3).
Result contended(const Args& a, long workers, long per_worker) {
  Result r;
  r.workers = workers;
  r.unit = "acq/s";
  const char store = a.workload[0];
  const std::string lock_name = store == 'R' ? "bench:r3" : key_base(a) + "lock";
  const std::string counter_key = store == 'R' ? "bench:r3:counter" : key_base(a) + "counter";
  auto make_counter = [&] {
    return store == 'R'   ? bench::make_redis_counter(a.redis, counter_key)
           : store == 'E' ? bench::make_etcd_counter(a.etcd, counter_key)
                          : bench::make_pg_counter(a.postgres, counter_key);
  };
  make_counter()->set(0);
  const auto ttl = std::chrono::milliseconds(static_cast<long>(a.ttl_s * 1000));
  const auto wait = std::chrono::milliseconds(static_cast<long>(a.wait_s * 1000));
  std::vector<dlock::Store> stores;
  std::vector<std::unique_ptr<bench::Counter>> counters;
  for (long w = 0; w < workers; ++w) {
    stores.push_back(dlock::open(store_url(a)));
    counters.push_back(make_counter());
  }
  std::mutex mu;
  std::atomic<long> errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  clock_type::time_point t0;
  for (long w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      auto& store = stores[static_cast<std::size_t>(w)];
      auto& counter = *counters[static_cast<std::size_t>(w)];
      std::vector<double> waits;
      while (!go) std::this_thread::yield();
      for (long i = 0; i < per_worker; ++i) {
        auto s = clock_type::now();
        try {
          auto l =
              store.acquire({}, lock_name, {.ttl = ttl, .wait = dlock::WaitPolicy::up_to(wait)});
          waits.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
          counter.set(counter.get() + 1);  // Deliberately non-atomic: the lock protects it.
          l.release();
        } catch (const std::exception& e) {
          errors++;
          std::fprintf(stderr, "worker %ld: %s\n", w, e.what());
        }
      }
      std::lock_guard lk(mu);
      r.lat_us.insert(r.lat_us.end(), waits.begin(), waits.end());
    });
  }
  t0 = clock_type::now();
  go = true;
  for (auto& t : threads) t.join();
  r.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  r.n = workers * per_worker;
  r.errors = errors;
  r.counter = make_counter()->get();
  r.expected = r.n;
  r.ok = r.counter == r.expected && r.errors == 0;
  std::uint64_t attempts = 0, acquisitions = 0;
  for (auto& s : stores) {
    attempts += s.metrics().acquire_attempts;
    acquisitions += s.metrics().acquisitions;
  }
  auto waits = r.lat_us;
  const double median = pct(waits, 0.5), max = waits.empty() ? 0 : waits.back();
  char buf[160];
  std::snprintf(
      buf, sizeof buf, "attempts/acquisition %.2f; fairness max/median wait %.1f",
      static_cast<double>(attempts) / std::max<double>(1, static_cast<double>(acquisitions)),
      median > 0 ? max / median : 0.0);
  r.note = buf;
  return r;
}

int run(const Args& a) {
  const char w = a.workload.size() == 2 ? a.workload[1] : '?';
  const bool redis = !a.workload.empty() && a.workload[0] == 'R';
  const bool pg = !a.workload.empty() && a.workload[0] == 'P';
  Result r;
  if (a.peer == "raw-scripts") {
    if (a.workload != "R1") {
      std::cerr << "dlock-bench: --peer raw-scripts supports R1 only\n";
      return 64;
    }
    auto raw = bench::raw_redis_script_pairs(a.redis, a.iters > 0 ? a.iters : 20000);
    r.n = raw.pairs;
    r.elapsed_s = raw.elapsed_s;
    r.lat_us = std::move(raw.lat_us);
    r.note = raw.note;
  } else if (a.peer == "raw" && pg) {
    if (w != '1' && w != '2') {
      std::cerr << "dlock-bench: --peer raw supports P1 and P2\n";
      return 64;
    }
    const long workers = w == '1' ? 1 : (a.workers > 0 ? a.workers : 32);
    auto raw =
        bench::raw_pg_pairs(a.postgres, kPgTable, a.iters > 0 ? a.iters : 5000, workers, a.secs);
    r.n = raw.pairs;
    r.elapsed_s = raw.elapsed_s;
    r.lat_us = std::move(raw.lat_us);
    r.workers = workers;
    r.note = raw.note;
  } else if (a.peer == "raw") {
    if (w == '1') {
      long iters = a.iters > 0 ? a.iters : (redis ? 20000 : 2000);
      auto raw = redis ? bench::raw_redis_pairs(a.redis, iters, 1)
                       : bench::raw_etcd_pairs(a.etcd, iters, 1, 0);
      r.n = raw.pairs;
      r.elapsed_s = raw.elapsed_s;
      r.lat_us = std::move(raw.lat_us);
      r.note = raw.note;
    } else if (w == '2' && !redis) {
      long workers = a.workers > 0 ? a.workers : 32;
      auto raw = bench::raw_etcd_pairs(a.etcd, 0, workers, a.secs);
      r.n = raw.pairs;
      r.elapsed_s = raw.elapsed_s;
      r.workers = workers;
      r.note = raw.note;
    } else {
      std::cerr << "dlock-bench: --peer raw supports R1, E1, E2 (R2's limit is redis-benchmark)\n";
      return 64;
    }
  } else if (w == '1') {
    r = sequential(a, a.iters > 0 ? a.iters : (redis ? 20000 : pg ? 5000 : 2000));
  } else if (w == '2') {
    r = parallel(a, a.workers > 0 ? a.workers : 32, a.secs);
  } else if (w == '3') {
    r = contended(a, a.workers > 0 ? a.workers : 8,
                  a.per_worker > 0 ? a.per_worker
                                   : (redis ? 250
                                      : pg  ? 100
                                            : 50));
  } else {
    std::cerr << "dlock-bench: unknown workload '" << a.workload << "'\n";
    return 64;
  }
  r.ok = r.ok && r.n > 0;
  const std::string peer = a.peer == "raw"           ? (redis ? "raw-hiredis"
                                                        : pg  ? "raw-libpq"
                                                              : "raw-grpc")
                           : a.peer == "raw-scripts" ? "raw-hiredis-scripts"
                                                     : "dlock";
  nlohmann::json j = {{"peer", peer},
                      {"workload", a.workload},
                      {"ok", r.ok},
                      {"n", r.n},
                      {"elapsed_s", std::round(r.elapsed_s * 1000) / 1000},
                      {"rate", std::round(static_cast<double>(r.n) / r.elapsed_s * 10) / 10},
                      {"unit", r.unit},
                      {"workers", r.workers},
                      {"errors", r.errors},
                      {"note", r.note}};
  if (!r.lat_us.empty()) {
    j["p50_us"] = std::round(pct(r.lat_us, 0.5) * 10) / 10;
    j["p99_us"] = std::round(pct(r.lat_us, 0.99) * 10) / 10;
    j["max_us"] = std::round(r.lat_us.back() * 10) / 10;
  }
  if (r.expected >= 0) {
    j["counter"] = r.counter;
    j["expected"] = r.expected;
  }
  if (a.store.size()) j["store"] = a.store;
  std::cout << j.dump() << std::endl;
  return r.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--print-redis-scripts") return bench::print_redis_scripts();
    if (k == "-h" || k == "--help") {
      std::cout << "usage: dlock-bench --workload R1|R2|R3|E1|E2|E3|P1|P2|P3 [--redis HOST:PORT] "
                   "[--etcd HOST:PORT] [--postgres URI] [--store URL] [--iters N] [--workers N] "
                   "[--secs S] [--per-worker N] [--ttl S] [--wait S] "
                   "[--peer dlock|raw|raw-scripts]\n";
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "dlock-bench: " << k << " needs a value\n";
      return 64;
    }
    std::string v = argv[++i];
    try {
      if (k == "--workload")
        a.workload = v;
      else if (k == "--redis")
        a.redis = v;
      else if (k == "--etcd")
        a.etcd = v;
      else if (k == "--postgres")
        a.postgres = v;
      else if (k == "--store")
        a.store = v;
      else if (k == "--peer")
        a.peer = v;
      else if (k == "--iters")
        a.iters = std::stol(v);
      else if (k == "--workers")
        a.workers = std::stol(v);
      else if (k == "--per-worker")
        a.per_worker = std::stol(v);
      else if (k == "--secs")
        a.secs = std::stod(v);
      else if (k == "--ttl")
        a.ttl_s = std::stod(v);
      else if (k == "--wait")
        a.wait_s = std::stod(v);
      else {
        std::cerr << "dlock-bench: unknown option " << k << "\n";
        return 64;
      }
    } catch (const std::exception&) {
      std::cerr << "dlock-bench: bad value for " << k << "\n";
      return 64;
    }
  }
  if (a.workload.size() != 2 ||
      (a.workload[0] != 'R' && a.workload[0] != 'E' && a.workload[0] != 'P')) {
    std::cerr << "dlock-bench: --workload R1|R2|R3|E1|E2|E3|P1|P2|P3 is required\n";
    return 64;
  }
  try {
    return run(a);
  } catch (const std::exception& e) {
    nlohmann::json j = {
        {"peer", a.peer}, {"workload", a.workload}, {"ok", false}, {"error", e.what()}};
    std::cout << j.dump() << std::endl;
    return 1;
  }
}
