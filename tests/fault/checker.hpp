// The safety checker of the fault suite (Jepsen-style, one host, one shared monotonic clock).
//
// Each worker process logs one line per critical section; the checker reads all logs and
// counts violations of what a lock with fencing must guarantee.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dlock::fault {

/// One critical section as a worker logged it. Times are CLOCK_MONOTONIC nanoseconds.
struct Section {
  int worker = 0;
  std::uint64_t token = 0;    ///< Fencing token of the grant.
  std::int64_t wait_ns = 0;   ///< How long the acquire waited.
  std::int64_t enter_ns = 0;  ///< Acquire returned.
  std::int64_t exit_ns = 0;   ///< Critical section ended (before release).
  /// The end of the time the holder could believe it held the lock: min(exit, the lease's
  /// validity at exit, the moment its loss signal fired).
  std::int64_t valid_end_ns = 0;
  bool lost = false;  ///< The loss signal fired (by the time the worker logged).
  std::string write;  ///< Register write: "accepted", "rejected" or "skipped".
  /// When the loss signal fired (0: it did not), and the lease's own validity end at exit:
  /// together with the next holder's entry they give the loss-signal latency.
  std::int64_t lost_ns = 0;
  std::int64_t lease_end_ns = 0;
};

/// What the checker found. Every count but `stale_rejected` must be 0 for a safe store.
struct Report {
  std::size_t sections = 0;
  /// Pairs of sections whose believed-held intervals overlap.
  std::size_t overlaps = 0;
  /// Register writes accepted although a higher token had already written.
  std::size_t stale_accepted = 0;
  /// Stale writes the register rejected (the fence working; not a violation).
  std::size_t stale_rejected = 0;
  /// Sections that lost the lock (another holder entered before they ended, or their
  /// validity ended inside them) without their loss signal firing.
  std::size_t unsignalled_losses = 0;
  /// Adjacent sections (by entry time) whose tokens do not strictly increase.
  std::size_t non_increasing_tokens = 0;
  /// Acquisitions that waited longer than the bound.
  std::size_t starved = 0;
  std::int64_t max_wait_ns = 0;
  /// Loss-signal latency of each signalled loss: from the moment the grant was gone (its
  /// lease's validity end, or the entry of the next holder if that came first) to the signal;
  /// 0 when the signal came first. A paused holder's latency includes the rest of its pause.
  std::size_t loss_signals = 0;
  std::int64_t loss_latency_max_ns = 0;
  std::int64_t loss_latency_median_ns = 0;
  /// Human-readable description of the first few violations.
  std::vector<std::string> details;

  bool safe() const {
    return overlaps == 0 && stale_accepted == 0 && unsignalled_losses == 0 &&
           non_increasing_tokens == 0;
  }
  std::string summary() const;
};

/// Checks `sections`; an acquisition waiting longer than `wait_bound` counts as starved.
Report check(std::vector<Section> sections, std::chrono::nanoseconds wait_bound);

/// Parses one log line (JSON object). Throws std::runtime_error on malformed input.
Section parse_section(const std::string& line);
/// Formats a section as one JSON line (what workers write).
std::string format_section(const Section& s);
/// Reads every `*.log` file of `dir`.
std::vector<Section> read_logs(const std::filesystem::path& dir);

/// CLOCK_MONOTONIC now, in nanoseconds (the clock every process on the host shares).
std::int64_t monotonic_ns();

}  // namespace dlock::fault
