#include "etcd/lease_pool.hpp"

namespace dlock::detail::etcd {

std::optional<LeasePool::Entry> LeasePool::take(std::int64_t ttl_seconds) {
  // Margin for the keep-alive that goes out with the next attempt to arrive in time.
  const auto usable_after = clock::now() + std::chrono::milliseconds(300);
  std::lock_guard lk(mu_);
  auto it = free_.find(ttl_seconds);
  if (it == free_.end()) return std::nullopt;
  auto& v = it->second;
  while (!v.empty()) {
    Entry e = v.back();
    v.pop_back();
    if (e.expires > usable_after) return e;
    // Too close to its expiry: etcd drops it on its own.
  }
  return std::nullopt;
}

bool LeasePool::give(const Entry& e) {
  std::lock_guard lk(mu_);
  auto& v = free_[e.ttl_seconds];
  if (v.size() >= kMaxPerTtl) return false;
  v.push_back(e);
  return true;
}

std::vector<LeasePool::Entry> LeasePool::drain() {
  std::lock_guard lk(mu_);
  std::vector<Entry> out;
  for (auto& [ttl, v] : free_) out.insert(out.end(), v.begin(), v.end());
  free_.clear();
  return out;
}

}  // namespace dlock::detail::etcd
