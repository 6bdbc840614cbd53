// Builds without etcd support: the etcd peers are unavailable.
#include <stdexcept>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"

namespace bench {

std::unique_ptr<Counter> make_etcd_counter(const std::string&, const std::string&) {
  throw std::runtime_error("this build has no etcd support");
}

RawResult raw_etcd_pairs(const std::string&, long, long, double) {
  throw std::runtime_error("this build has no etcd support");
}

}  // namespace bench
