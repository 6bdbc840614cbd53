#include "core/token.hpp"

#include <sys/random.h>

#include <cerrno>
#include <random>
#include <system_error>

namespace dlock::detail {
namespace {

void fill_random(unsigned char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(r);
  }
}

}  // namespace

std::string random_token() {
  unsigned char bytes[16];
  fill_random(bytes, sizeof bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return out;
}

double random_unit() {
  thread_local std::mt19937_64 gen([] {
    unsigned char seed[8];
    fill_random(seed, sizeof seed);
    std::uint64_t s = 0;
    for (unsigned char b : seed) s = (s << 8) | b;
    return s;
  }());
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace dlock::detail
