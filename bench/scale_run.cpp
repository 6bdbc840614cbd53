// Scale run: one process holds N locks at once with auto-renew for a while, then reports
// RSS, CPU use, renewals and losses as one JSON line.
//
//   dlock_scale --store memory:// --locks 100000 --secs 90 --ttl 30s
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "dlock/dlock.hpp"

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::chrono::milliseconds parse_ms(const std::string& s) {
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms")
    return std::chrono::milliseconds(std::stol(s));
  if (!s.empty() && s.back() == 's') return std::chrono::seconds(std::stol(s));
  return std::chrono::milliseconds(std::stol(s));
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "memory://";
  long locks = 100000;
  double secs = 90;
  std::chrono::milliseconds ttl = std::chrono::seconds(30);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--store")
      url = v;
    else if (a == "--locks")
      locks = std::stol(v);
    else if (a == "--secs")
      secs = std::stod(v);
    else if (a == "--ttl")
      ttl = parse_ms(v);
    else {
      std::cerr << "usage: dlock_scale [--store URL] [--locks N] [--secs S] [--ttl D]\n";
      return 64;
    }
  }
  try {
    dlock::Store store = dlock::open(url);
    const long rss0 = rss_kib();
    std::vector<dlock::Lease> held;
    held.reserve(static_cast<std::size_t>(locks));
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < locks; ++i) {
      held.push_back(
          store.acquire({}, "scale:" + std::to_string(i), {.ttl = ttl, .auto_renew = true}));
    }
    const double acquire_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu0 = cpu_seconds();
    auto t1 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    const double held_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const double cpu_hold = cpu_seconds() - cpu0;
    long still_held = 0;
    for (auto& l : held) still_held += l.held() ? 1 : 0;
    auto m = store.metrics();
    const long rss = rss_kib();
    held.clear();
    const bool ok = still_held == locks && m.losses == 0;
    std::printf(
        "{\"store\": \"%s\", \"ok\": %s, \"locks\": %ld, \"held_at_end\": %ld, \"acquire_s\": "
        "%.2f, "
        "\"hold_s\": %.1f, \"ttl_ms\": %lld, \"renewals\": %llu, \"losses\": %llu, "
        "\"rss_mib\": %.1f, \"rss_growth_mib\": %.1f, \"cpu_cores_while_holding\": %.3f}\n",
        std::string(store.scheme()).c_str(), ok ? "true" : "false", locks, still_held, acquire_s,
        held_s, static_cast<long long>(ttl.count()), static_cast<unsigned long long>(m.renewals),
        static_cast<unsigned long long>(m.losses), static_cast<double>(rss) / 1024.0,
        static_cast<double>(rss - rss0) / 1024.0, cpu_hold / held_s);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dlock_scale: %s\n", e.what());
    return 69;
  }
}
