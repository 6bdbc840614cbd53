#include "metrics_file.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "cli_log.hpp"

namespace dlock::cli {

MetricsFileAtExit::~MetricsFileAtExit() {
  if (path_.empty()) return;
  try {
    const std::string text =
        to_prometheus(store_.metrics(), {{"store", std::string(store_.scheme())}, {"lock", lock_}});
    const std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      out.close();
      if (!out) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot rename " + tmp + " to " + path_ + ": " + why);
    }
    log_line(LogLevel::debug, "metrics_written", "wrote metrics to " + path_, {{"path", path_}});
  } catch (const std::exception& e) {
    log_line(LogLevel::warning, "metrics_failed", std::string("--metrics-file: ") + e.what(),
             {{"path", path_}});
  }
}

}  // namespace dlock::cli
