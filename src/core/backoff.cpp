#include "core/backoff.hpp"

#include <algorithm>

#include "core/token.hpp"

namespace dlock::detail {

std::chrono::microseconds backoff_delay(const RetryPolicy& policy, int attempt) {
  using us = std::chrono::microseconds;
  const double base = static_cast<double>(us(policy.delay).count());
  const double cap = static_cast<double>(us(policy.max_delay).count());
  const int n = std::max(attempt, 1);
  double d = base;
  switch (policy.backoff) {
    case Backoff::constant:
      break;
    case Backoff::linear:
      d = base * n;
      break;
    case Backoff::exponential:
      d = base * static_cast<double>(1ull << std::min(n - 1, 30));
      break;
  }
  d = std::min(d, cap);
  const double spread = std::clamp(policy.jitter, 0.0, 1.0);
  d *= 1.0 - spread + 2.0 * spread * random_unit();
  return us(std::max<long long>(1000, static_cast<long long>(d)));
}

}  // namespace dlock::detail
