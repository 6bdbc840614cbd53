// Google Benchmark suite of the core: token generation, acquire/release on the in-process
// store (the core's own overhead: validation, metadata, session, lease state, scheduler
// entry), the contended wait path, and the renewal scheduler with many leases.
#include <benchmark/benchmark.h>

#include <thread>

#include "core/renewal_scheduler.hpp"
#include "core/token.hpp"
#include "dlock/dlock.hpp"

namespace {

using namespace std::chrono_literals;

void BM_RandomToken(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(dlock::detail::random_token());
}
BENCHMARK(BM_RandomToken);

void BM_AcquireRelease(benchmark::State& state) {
  static dlock::Store store = dlock::open("memory://bench-pairs");
  const std::string key = "k" + std::to_string(state.thread_index());
  for (auto _ : state) {
    dlock::Lease l = store.acquire({}, key, {.ttl = 10s});
    benchmark::DoNotOptimize(l.fencing_token());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AcquireRelease)->Threads(1)->Threads(4);

void BM_ContendedHandoff(benchmark::State& state) {
  // All threads on one key: measures the notification wake-up path.
  static dlock::Store store = dlock::open("memory://bench-contended");
  for (auto _ : state) {
    dlock::Lease l = store.acquire({}, "hot", {.ttl = 10s});
    benchmark::DoNotOptimize(l.fencing_token());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ContendedHandoff)->Threads(4)->UseRealTime();

void BM_AcquireWithAutoRenew(benchmark::State& state) {
  // Cost of holding N leases on the scheduler: acquire N with auto-renew, then release.
  const auto n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    dlock::Store store = dlock::open("memory://");
    std::vector<dlock::Lease> leases;
    leases.reserve(n);
    for (int i = 0; i < n; ++i) {
      leases.push_back(
          store.acquire({}, "k" + std::to_string(i), {.ttl = 30s, .auto_renew = true}));
    }
    state.counters["scheduler_entries"] =
        static_cast<double>(dlock::detail::RenewalScheduler::process_wide().pending());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_AcquireWithAutoRenew)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
