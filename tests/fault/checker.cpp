#include "fault/checker.hpp"

#include <time.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace dlock::fault {

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string Report::summary() const {
  std::ostringstream o;
  o << "sections=" << sections << " overlaps=" << overlaps << " stale_accepted=" << stale_accepted
    << " stale_rejected=" << stale_rejected << " unsignalled_losses=" << unsignalled_losses
    << " non_increasing_tokens=" << non_increasing_tokens << " starved=" << starved
    << " max_wait_ms=" << max_wait_ns / 1'000'000 << " loss_signals=" << loss_signals
    << " loss_latency_ms_median=" << loss_latency_median_ns / 1'000'000
    << " loss_latency_ms_max=" << loss_latency_max_ns / 1'000'000;
  for (auto& d : details) o << "\n  " << d;
  return o.str();
}

Report check(std::vector<Section> all, std::chrono::nanoseconds wait_bound) {
  Report r;
  r.sections = all.size();
  // A section whose validity ended before its entry was even recorded (the worker was paused
  // between the acquire returning and reading the clock) never believed it held the lock:
  // it cannot overlap anyone and has no place in the entry order; it must still signal loss.
  std::vector<Section> s;
  for (auto& x : all) {
    if (x.valid_end_ns > x.enter_ns) {
      s.push_back(x);
    } else {
      if (!x.lost) {
        r.unsignalled_losses++;
        if (r.details.size() < 10) {
          r.details.push_back("unsignalled loss: w" + std::to_string(x.worker) + "/t" +
                              std::to_string(x.token) + " (validity ended before entry)");
        }
      }
      if (x.write == "accepted") s.push_back(x);  // Its write still counts for the fence.
    }
  }
  std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.enter_ns < b.enter_ns; });
  auto note = [&](std::string d) {
    if (r.details.size() < 10) r.details.push_back(std::move(d));
  };
  auto describe = [](const Section& x) {
    return "w" + std::to_string(x.worker) + "/t" + std::to_string(x.token);
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto& a = s[i];
    r.max_wait_ns = std::max(r.max_wait_ns, a.wait_ns);
    if (a.wait_ns > wait_bound.count()) r.starved++;
    if (a.write == "rejected") r.stale_rejected++;
    bool lost_lock = a.valid_end_ns < a.exit_ns;
    for (std::size_t j = i + 1; j < s.size() && s[j].enter_ns < a.exit_ns; ++j) {
      const auto& b = s[j];
      lost_lock = true;  // Someone else entered before `a` ended: `a` lost the lock.
      if (b.enter_ns < a.valid_end_ns) {
        r.overlaps++;
        note("overlap: " + describe(a) + " believed it held until " +
             std::to_string((a.valid_end_ns - b.enter_ns) / 1000) + " us after " + describe(b) +
             " entered");
      }
    }
    if (lost_lock && !a.lost) {
      r.unsignalled_losses++;
      note("unsignalled loss: " + describe(a));
    }
    if (i > 0 && s[i - 1].token >= a.token) {
      r.non_increasing_tokens++;
      note("token order: " + describe(s[i - 1]) + " entered before " + describe(a));
    }
  }
  std::vector<std::int64_t> latencies;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto& a = s[i];
    if (a.lost_ns == 0) continue;
    std::int64_t gone = a.lease_end_ns != 0 ? a.lease_end_ns : a.valid_end_ns;
    if (i + 1 < s.size()) gone = std::min(gone, s[i + 1].enter_ns);
    latencies.push_back(std::max<std::int64_t>(0, a.lost_ns - gone));
  }
  r.loss_signals = latencies.size();
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    r.loss_latency_max_ns = latencies.back();
    r.loss_latency_median_ns = latencies[latencies.size() / 2];
  }
  // Accepted register writes must carry strictly increasing tokens in write (exit) order: a
  // repeated token (a counter that went back in a failover) is as stale as a lower one.
  std::vector<const Section*> writes;
  for (auto& x : s) {
    if (x.write == "accepted") writes.push_back(&x);
  }
  std::sort(writes.begin(), writes.end(), [](auto* a, auto* b) { return a->exit_ns < b->exit_ns; });
  std::uint64_t highest = 0;
  for (auto* w : writes) {
    if (w->token <= highest) {
      r.stale_accepted++;
      note("stale write accepted: " + describe(*w));
    }
    highest = std::max(highest, w->token);
  }
  return r;
}

Section parse_section(const std::string& line) {
  auto j = nlohmann::json::parse(line);
  Section s;
  s.worker = j.at("w");
  s.token = j.at("token");
  s.wait_ns = j.at("wait_ns");
  s.enter_ns = j.at("enter_ns");
  s.exit_ns = j.at("exit_ns");
  s.valid_end_ns = j.at("valid_end_ns");
  s.lost = j.at("lost");
  s.write = j.at("write");
  s.lost_ns = j.value("lost_ns", std::int64_t{0});
  s.lease_end_ns = j.value("lease_end_ns", std::int64_t{0});
  return s;
}

std::string format_section(const Section& s) {
  nlohmann::json j = {{"w", s.worker},        {"token", s.token},
                      {"wait_ns", s.wait_ns}, {"enter_ns", s.enter_ns},
                      {"exit_ns", s.exit_ns}, {"valid_end_ns", s.valid_end_ns},
                      {"lost", s.lost},       {"write", s.write},
                      {"lost_ns", s.lost_ns}, {"lease_end_ns", s.lease_end_ns}};
  return j.dump();
}

std::vector<Section> read_logs(const std::filesystem::path& dir) {
  std::vector<Section> out;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".log") continue;
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(parse_section(line));
    }
  }
  return out;
}

}  // namespace dlock::fault
