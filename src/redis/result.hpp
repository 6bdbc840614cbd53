// What the Redis connection layer returns: a value, or the `Failure` that replaced it. The
// layer knows nothing of lock keys or steps; the store adds them where it calls (router.hpp)
// when it turns a failure into a `dlock::Error`.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "dlock/error.hpp"
#include "redis/resp.hpp"

namespace dlock::detail::redis {

/// Why a request got no reply (connection lost, connect failed, timed out, closed...).
struct Failure {
  errc code = errc::unavailable;
  std::string detail;
};

/// A value or the failure that replaced it.
template <class T>
class Result {
 public:
  /// A failure with no detail (a placeholder until the real outcome is known).
  Result() = default;
  Result(T value) : value_(std::move(value)) {}              // NOLINT: implicit on purpose.
  Result(Failure failure) : failure_(std::move(failure)) {}  // NOLINT: implicit on purpose.

  /// Whether there is a value.
  bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  /// The value; only when `ok()`.
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  /// Why there is no value; meaningful only when `!ok()`.
  const Failure& failure() const noexcept { return failure_; }

 private:
  std::optional<T> value_;
  Failure failure_{};
};

/// One request's outcome: its reply (which may itself be a RESP error reply) or a failure.
using Outcome = Result<RespValue>;

}  // namespace dlock::detail::redis
