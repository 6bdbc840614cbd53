// `dlock run --metrics-file PATH`: the store's metrics in node_exporter's textfile format,
// written when the command ends, so a cron job's lock waits and hold times reach Prometheus.
#pragma once

#include <string>

#include "dlock/store.hpp"

namespace dlock::cli {

/// Writes `store`'s metrics (labels: store, lock) to `path` when destroyed, i.e. on every way
/// out of `run` once the store is open, after the lease it outlives has been released. The
/// file is written beside `path` and renamed over it, so a collector never reads half of it.
/// A failure is logged as a warning; it does not change dlock's exit code.
class MetricsFileAtExit {
 public:
  MetricsFileAtExit(std::string path, const Store& store, std::string lock)
      : path_(std::move(path)), store_(store), lock_(std::move(lock)) {}
  ~MetricsFileAtExit();
  MetricsFileAtExit(const MetricsFileAtExit&) = delete;
  MetricsFileAtExit& operator=(const MetricsFileAtExit&) = delete;

 private:
  const std::string path_;
  const Store& store_;
  const std::string lock_;
};

}  // namespace dlock::cli
