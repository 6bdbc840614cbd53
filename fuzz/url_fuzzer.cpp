// Fuzzes the store URL parser and the option helpers every store uses on it (src/core/url.*):
// text that users type (--store, DLOCK_STORE) or that configuration files carry. Any input
// must either parse or fail with dlock::Error(invalid_argument); nothing else may escape.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/url.hpp"
#include "dlock/error.hpp"

namespace {

void expect_invalid_argument(const dlock::Error& e) {
  if (e.code() != dlock::errc::invalid_argument) __builtin_trap();
}

void query_helpers(const dlock::detail::ParsedUrl& u) {
  for (const auto& [key, value] : u.query) {
    try {
      (void)dlock::detail::query_duration(u, key, std::chrono::milliseconds(1));
    } catch (const dlock::Error& e) {
      expect_invalid_argument(e);
    }
    try {
      (void)dlock::detail::query_bool(u, key, false);
    } catch (const dlock::Error& e) {
      expect_invalid_argument(e);
    }
    try {
      (void)dlock::detail::query_int(u, key, 0, -1000, 1000);
    } catch (const dlock::Error& e) {
      expect_invalid_argument(e);
    }
    (void)dlock::detail::query_string(u, key, "");
  }
  try {
    dlock::detail::check_query_keys(u, {"prefix", "timeout"});
  } catch (const dlock::Error& e) {
    expect_invalid_argument(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::uint16_t default_port : {std::uint16_t{0}, std::uint16_t{6379}}) {
    try {
      const auto u = dlock::detail::parse_url(text, default_port);
      const std::string shown = u.redacted();
      if (u.has_password && shown.find(":***@") == std::string::npos) __builtin_trap();
      if (default_port != 0) {
        for (const auto& e : u.endpoints) {
          if (e.host.empty() || e.port == 0) __builtin_trap();
        }
      }
      query_helpers(u);
    } catch (const dlock::Error& e) {
      expect_invalid_argument(e);
    }
  }
  try {
    const auto d = dlock::detail::parse_duration(text, "fuzz");
    if (d.count() < 0) __builtin_trap();
  } catch (const dlock::Error& e) {
    expect_invalid_argument(e);
  }
  return 0;
}
