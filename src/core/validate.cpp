#include "core/validate.hpp"

#include <string>

#include "dlock/error.hpp"

namespace dlock::detail {
namespace {

[[noreturn]] void bad(std::string_view store, std::string_view key, std::string_view step,
                      const std::string& why) {
  throw Error(errc::invalid_argument, std::string(store), std::string(key), std::string(step), why);
}

}  // namespace

void validate_key(std::string_view key, const Capabilities& caps, std::string_view store,
                  std::string_view step) {
  if (key.empty()) bad(store, key, step, "empty key");
  if (key.size() > caps.max_key_bytes) {
    // Do not echo a huge key in the message.
    bad(store, key.substr(0, 32), step,
        "key of " + std::to_string(key.size()) + " bytes exceeds the limit of " +
            std::to_string(caps.max_key_bytes));
  }
  if (!caps.binary_keys) {
    for (unsigned char c : key) {
      if (c < 0x20 || c == 0x7f) bad(store, "", step, "key contains a NUL or control byte");
    }
  }
}

std::chrono::milliseconds validate_ttl(std::chrono::milliseconds ttl, const Capabilities& caps,
                                       std::string_view store, std::string_view key,
                                       std::string_view step) {
  if (ttl.count() <= 0) bad(store, key, step, "TTL must be positive");
  if (ttl > kMaxTtl) bad(store, key, step, "TTL above the maximum of 7 days");
  return ttl < caps.min_ttl ? caps.min_ttl : ttl;
}

void validate_options(const LockOptions& opts, std::string_view store, std::string_view key) {
  if (opts.wait.mode == WaitPolicy::Mode::up_to && opts.wait.timeout.count() < 0) {
    bad(store, key, "options", "negative wait timeout");
  }
  if (opts.wait.mode != WaitPolicy::Mode::up_to && opts.wait.timeout.count() != 0) {
    bad(store, key, "options", "wait timeout given with a wait mode other than up_to");
  }
  if (opts.retry.max_attempts < 0) bad(store, key, "options", "negative max_attempts");
  if (opts.retry.delay.count() <= 0) bad(store, key, "options", "retry delay must be positive");
  if (opts.retry.max_delay < opts.retry.delay) {
    bad(store, key, "options", "retry max_delay below delay");
  }
  if (!(opts.retry.jitter >= 0.0 && opts.retry.jitter <= 1.0)) {
    bad(store, key, "options", "jitter must be in [0, 1]");
  }
  if (opts.renew_interval.count() < 0) bad(store, key, "options", "negative renew interval");
  if (opts.renew_interval.count() > 0 && opts.renew_interval >= opts.ttl) {
    bad(store, key, "options", "renew interval must be shorter than the TTL");
  }
  if (opts.metadata.size() > kMaxMetadataBytes) {
    bad(store, key, "options", "metadata above 4096 bytes");
  }
}

}  // namespace dlock::detail
