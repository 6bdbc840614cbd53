#include "cmd_demo.hpp"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli_common.hpp"

extern char** environ;

namespace dlock::cli {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// The protected resource: a counter and the highest fencing token it has seen. Written
// in place on purpose (truncate + write), so two writers at once would lose updates.
struct Resource {
  long counter = 0;
  std::uint64_t last_token = 0;
};

Resource read_resource(const std::string& path) {
  Resource r;
  std::ifstream in(path);
  in >> r.counter >> r.last_token;
  return r;
}

void write_resource(const std::string& path, const Resource& r) {
  std::ofstream(path, std::ios::trunc) << r.counter << " " << r.last_token << "\n";
}

int worker(const DemoArgs& a) {
  auto store = open_store(resolve_store_url(a.store));
  const LockOptions opts{.ttl = parse_duration_arg(a.ttl, "--ttl"), .metadata = "dlock demo"};
  std::ofstream out(a.out);
  int stale = 0;
  for (int i = 0; i < a.iterations; ++i) {
    const auto start = clock::now();
    Lease lease = store.acquire(Context::with_timeout(std::chrono::minutes(2)), a.name, opts);
    const auto waited = std::chrono::duration_cast<microseconds>(clock::now() - start);
    Resource r = read_resource(a.resource);
    // The resource's own fencing check: a write with an older token is a stale holder.
    if (lease.fencing_token() <= r.last_token) ++stale;
    std::this_thread::sleep_for(microseconds(50));  // Widen the window a broken lock would hit.
    write_resource(a.resource, {r.counter + 1, lease.fencing_token()});
    out << lease.fencing_token() << " " << waited.count() << "\n";
    lease.release();
  }
  if (stale != 0) {
    std::fprintf(stderr, "dlock demo-worker %d: %d writes carried a stale fencing token\n",
                 ::getpid(), stale);
    return kFalse;
  }
  return kOk;
}

struct Sample {
  std::uint64_t token;
  long long wait_us;
};

std::string ms_text(long long us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(us) / 1000.0);
  return buf;
}

void draw_progress(bool tty, long done, long total, double secs, int running) {
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  if (tty) {
    constexpr int kWidth = 30;
    int filled = total > 0 ? static_cast<int>(kWidth * done / total) : 0;
    std::printf("\r  [%s%s] %ld/%ld acquisitions  %.0f/s  %d workers running ",
                std::string(static_cast<std::size_t>(filled), '#').c_str(),
                std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(), done, total,
                rate, running);
  } else {
    std::printf("progress: %ld/%ld acquisitions, %.0f/s, %d workers running\n", done, total, rate,
                running);
  }
  std::fflush(stdout);
}

int demo(const DemoArgs& a) {
  if (a.workers < 1 || a.workers > 256 || a.iterations < 1 || a.iterations > 1'000'000) {
    std::fprintf(stderr, "dlock demo: --workers must be 1..256 and --iterations 1..1000000\n");
    return kUsage;
  }
  parse_duration_arg(a.ttl, "--ttl");
  const std::string url = resolve_store_url(a.store);
  Store store = open_store(url);  // Fails early (and clearly) on a bad or unreachable store.

  std::string tmpl = (fs::temp_directory_path() / "dlock-demo-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("dlock demo: mkdtemp");
    return kSoftware;
  }
  const fs::path work(tmpl);
  const std::string resource = (work / "counter").string();
  write_resource(resource, {});
  const std::string self = fs::read_symlink("/proc/self/exe").string();

  std::printf("dlock demo: %d worker processes x %d iterations on lock \"%s\" at %s\n", a.workers,
              a.iterations, a.name.c_str(), store.url().c_str());
  std::fflush(stdout);
  const auto start = clock::now();
  std::vector<pid_t> pids;
  for (int w = 0; w < a.workers; ++w) {
    std::vector<std::string> argv = {
        self,           "demo-worker",
        "--store",      url,
        "--name",       a.name,
        "--iterations", std::to_string(a.iterations),
        "--ttl",        a.ttl,
        "--resource",   resource,
        "--out",        (work / ("worker" + std::to_string(w))).string()};
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    pid_t pid = -1;
    if (int rc = ::posix_spawn(&pid, self.c_str(), nullptr, nullptr, cargv.data(), environ);
        rc != 0) {
      std::fprintf(stderr, "dlock demo: cannot start a worker: %s\n", std::strerror(rc));
      for (pid_t p : pids) ::kill(p, SIGTERM);
      break;
    }
    pids.push_back(pid);
  }

  const long total = static_cast<long>(a.workers) * a.iterations;
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  std::vector<int> statuses(pids.size(), -1);
  auto last_line = clock::now();
  long progress = 0;  // The counter file is rewritten in place: a read may catch it empty.
  for (std::size_t running = pids.size(); running > 0;) {
    std::this_thread::sleep_for(milliseconds(tty ? 100 : 50));
    running = 0;
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (statuses[i] >= 0) continue;
      int st = 0;
      if (::waitpid(pids[i], &st, WNOHANG) == pids[i]) {
        statuses[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      } else {
        ++running;
      }
    }
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    if (tty || clock::now() - last_line >= std::chrono::seconds(1)) {
      progress = std::max(progress, read_resource(resource).counter);
      draw_progress(tty, progress, total, secs, static_cast<int>(running));
      last_line = clock::now();
    }
  }
  const double secs = std::chrono::duration<double>(clock::now() - start).count();
  if (tty) std::printf("\n");

  // Gather what the workers recorded.
  std::vector<Sample> samples;
  bool per_worker_increasing = true;
  for (int w = 0; w < a.workers; ++w) {
    std::ifstream in(work / ("worker" + std::to_string(w)));
    Sample s{};
    std::uint64_t last = 0;
    while (in >> s.token >> s.wait_us) {
      if (s.token <= last) per_worker_increasing = false;
      last = s.token;
      samples.push_back(s);
    }
  }
  const Resource final_state = read_resource(resource);
  std::error_code ec;
  fs::remove_all(work, ec);

  std::vector<long long> waits;
  std::vector<std::uint64_t> tokens;
  for (auto& s : samples) {
    waits.push_back(s.wait_us);
    tokens.push_back(s.token);
  }
  std::sort(waits.begin(), waits.end());
  std::sort(tokens.begin(), tokens.end());
  auto pct = [&](double p) {
    if (waits.empty()) return 0LL;
    return waits[std::min(waits.size() - 1, static_cast<std::size_t>(p * waits.size()))];
  };
  const bool workers_ok =
      std::all_of(statuses.begin(), statuses.end(), [](int s) { return s == 0; }) &&
      static_cast<int>(pids.size()) == a.workers;
  const bool tokens_distinct = std::adjacent_find(tokens.begin(), tokens.end()) == tokens.end();
  const bool tokens_ok = workers_ok && per_worker_increasing && tokens_distinct &&
                         static_cast<long>(tokens.size()) == total;
  const bool counter_ok = final_state.counter == total;

  std::printf("  acquisitions:       %zu in %.2f s (%.0f/s)\n", samples.size(), secs,
              secs > 0 ? static_cast<double>(samples.size()) / secs : 0.0);
  std::printf("  wait p50/p99/max:   %s / %s / %s\n", ms_text(pct(0.50)).c_str(),
              ms_text(pct(0.99)).c_str(), ms_text(waits.empty() ? 0 : waits.back()).c_str());
  std::printf("  fencing tokens:     %s (%llu..%llu, checked by the resource on every write)\n",
              tokens_ok ? "strictly increasing  OK" : "NOT strictly increasing  FAILED",
              static_cast<unsigned long long>(tokens.empty() ? 0 : tokens.front()),
              static_cast<unsigned long long>(tokens.empty() ? 0 : tokens.back()));
  std::printf("  counter:            %ld (expected %ld)  %s\n", final_state.counter, total,
              counter_ok ? "OK" : "FAILED: updates were lost");
  std::fflush(stdout);
  for (int s : statuses) {
    if (s != 0 && s != kFalse && s > 0) return s;  // E.g. 69: the store went away.
  }
  return tokens_ok && counter_ok ? kOk : kFalse;
}

}  // namespace

void add_demo_commands(CLI::App& app, DemoArgs& args, int* exit_code) {
  auto* d = app.add_subcommand(
      "demo",
      "Show the lock at work: worker processes contend for one lock and update a "
      "shared counter file with a deliberately non-atomic read-modify-write");
  d->footer(
      "Each worker is a separate process (this binary re-run). At the end: acquisitions per "
      "second, the wait before each acquisition (p50/p99/max), whether the fencing tokens "
      "strictly increased (the counter file rejects older tokens, as a protected resource "
      "should) and whether the counter is exact (no update lost).\n\nExit codes: 0 all "
      "checks passed; 1 a check failed; 64 usage error; 69 store unreachable or access "
      "refused.");
  d->add_option("--workers", args.workers, "Number of worker processes (default 4)");
  d->add_option("--iterations", args.iterations, "Acquisitions per worker (default 50)");
  d->add_option("--store", args.store,
                "Store URL (default: $DLOCK_STORE, else the embedded file:// store)")
      ->type_name("URL");
  d->add_option("--name", args.name, "Lock name (default dlock-demo)");
  d->add_option("--ttl", args.ttl, "Lock TTL (default 10s)")->type_name("DURATION");
  d->callback([&args, exit_code] {
    try {
      *exit_code = demo(args);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });

  auto* w = app.add_subcommand("demo-worker", "");  // Hidden: an empty description.
  w->group("");
  w->add_option("--store", args.store)->required()->type_name("URL");
  w->add_option("--name", args.name)->required();
  w->add_option("--iterations", args.iterations)->required();
  w->add_option("--ttl", args.ttl)->type_name("DURATION");
  w->add_option("--resource", args.resource)->required();
  w->add_option("--out", args.out)->required();
  w->callback([&args, exit_code] {
    try {
      *exit_code = worker(args);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });
}

}  // namespace dlock::cli
