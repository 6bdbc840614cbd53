#include "cmd_demo.hpp"

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
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

int worker(const DemoArgs& a, const GlobalArgs& g) {
  auto store = open_store(resolve_store_url(g.store));
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
    log_line(LogLevel::error, "stale_token",
             std::to_string(stale) + " writes carried a stale fencing token",
             {{"stale_writes", std::int64_t{stale}}});
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

int demo(const DemoArgs& a, const GlobalArgs& g) {
  if (a.workers < 1 || a.workers > 256 || a.iterations < 1 || a.iterations > 1'000'000) {
    log_line(LogLevel::error, "usage", "--workers must be 1..256 and --iterations 1..1000000",
             {{"exit_code", std::int64_t{kUsage}}});
    return kUsage;
  }
  parse_duration_arg(a.ttl, "--ttl");
  const std::string url = resolve_store_url(g.store);
  Store store = open_store(url);  // Fails early (and clearly) on a bad or unreachable store.

  std::string tmpl = (fs::temp_directory_path() / "dlock-demo-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    log_line(LogLevel::error, "error", std::string("mkdtemp: ") + std::strerror(errno));
    return kSoftware;
  }
  const fs::path work(tmpl);
  const std::string resource = (work / "counter").string();
  write_resource(resource, {});
  const std::string self = fs::read_symlink("/proc/self/exe").string();

  if (!g.json) {
    std::printf("dlock demo: %d worker processes x %d iterations on lock \"%s\" at %s\n", a.workers,
                a.iterations, a.name.c_str(), store.url().c_str());
    std::fflush(stdout);
  }
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
      log_line(LogLevel::error, "error",
               std::string("cannot start a worker: ") + std::strerror(rc));
      for (pid_t p : pids) ::kill(p, SIGTERM);
      break;
    }
    pids.push_back(pid);
    log_line(LogLevel::info, "worker_started",
             "started worker " + std::to_string(w) + " (pid " + std::to_string(pid) + ")",
             {{"worker", std::int64_t{w}}, {"child_pid", std::int64_t{pid}}});
  }

  const long total = static_cast<long>(a.workers) * a.iterations;
  const bool tty = !g.json && ::isatty(STDOUT_FILENO) == 1;
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
        log_line(LogLevel::info, "worker_exited",
                 "worker " + std::to_string(i) + " (pid " + std::to_string(pids[i]) +
                     ") exited with status " + std::to_string(statuses[i]),
                 {{"worker", static_cast<std::int64_t>(i)}, {"status", std::int64_t{statuses[i]}}});
      } else {
        ++running;
      }
    }
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    if (!g.json && (tty || clock::now() - last_line >= std::chrono::seconds(1))) {
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

  const int code = [&] {
    for (int st : statuses) {
      if (st != 0 && st != kFalse && st > 0) return st;  // E.g. 69: the store went away.
    }
    return tokens_ok && counter_ok ? static_cast<int>(kOk) : static_cast<int>(kFalse);
  }();
  if (g.json) {
    const nlohmann::json j = {
        {"store", store.url()},
        {"name", a.name},
        {"workers", a.workers},
        {"iterations", a.iterations},
        {"acquisitions", samples.size()},
        {"seconds", secs},
        {"acquisitions_per_second", secs > 0 ? static_cast<double>(samples.size()) / secs : 0.0},
        {"wait_us",
         {{"p50", pct(0.50)}, {"p99", pct(0.99)}, {"max", waits.empty() ? 0 : waits.back()}}},
        {"fencing_tokens",
         {{"strictly_increasing", tokens_ok},
          {"first", tokens.empty() ? 0 : tokens.front()},
          {"last", tokens.empty() ? 0 : tokens.back()}}},
        {"counter", {{"value", final_state.counter}, {"expected", total}, {"exact", counter_ok}}},
        {"ok", code == kOk}};
    std::cout << j.dump(2) << "\n";
    return code;
  }
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
  return code;
}

}  // namespace

void add_demo_commands(CLI::App& app, const GlobalArgs& global, DemoArgs& args, int* exit_code) {
  auto* d = app.add_subcommand(
      "demo",
      "Show the lock at work: worker processes contend for one lock and update a "
      "shared counter file with a deliberately non-atomic read-modify-write");
  d->footer(
      "Each worker is a separate process (this binary re-run). At the end: acquisitions per "
      "second, the wait before each acquisition (p50/p99/max), whether the fencing tokens "
      "strictly increased (the counter file rejects older tokens, as a protected resource "
      "should) and whether the counter is exact (no update lost); --json prints them as one "
      "JSON object. The demo's own options read DLOCK_DEMO_* (not DLOCK_NAME, which `dlock "
      "run` sets for its command).\n\nExit codes: 0 all checks passed; 1 a check failed; 64 "
      "usage error; 69 store unreachable or access refused.\n" +
      std::string(kGlobalOptionsHelp));
  with_env(d->add_option("--workers", args.workers, "Number of worker processes (default 4)"),
           "DLOCK_DEMO_WORKERS")
      ->type_name("N");
  with_env(d->add_option("--iterations", args.iterations, "Acquisitions per worker (default 50)"),
           "DLOCK_DEMO_ITERATIONS")
      ->type_name("N");
  with_env(d->add_option("--name", args.name, "Lock name (default dlock-demo)"), "DLOCK_DEMO_NAME")
      ->type_name("NAME");
  with_env(d->add_option("--ttl", args.ttl, "Lock TTL (default 10s)"), "DLOCK_TTL")
      ->type_name("DURATION");
  d->callback([&global, &args, exit_code] {
    try {
      start_command(global, "demo");
      *exit_code = demo(args, global);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });

  // Hidden (an empty description): the parent re-runs this binary as `dlock demo-worker ...`
  // with every option on the command line, so no environment variables here.
  auto* w = app.add_subcommand("demo-worker", "");
  w->group("");
  w->add_option("--name", args.name)->required();
  w->add_option("--iterations", args.iterations)->required();
  w->add_option("--ttl", args.ttl)->type_name("DURATION");
  w->add_option("--resource", args.resource)->required();
  w->add_option("--out", args.out)->required();
  w->callback([&global, &args, exit_code] {
    try {
      start_command(global, "demo-worker");
      *exit_code = worker(args, global);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });
}

}  // namespace dlock::cli
