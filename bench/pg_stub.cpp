// Builds without the PostgreSQL store: its peers are unavailable.
#include <stdexcept>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"

namespace bench {

std::unique_ptr<Counter> make_pg_counter(const std::string&, const std::string&) {
  throw std::runtime_error("this build has no PostgreSQL support");
}

RawResult raw_pg_pairs(const std::string&, const std::string&, long, long, double) {
  throw std::runtime_error("this build has no PostgreSQL support");
}

}  // namespace bench
