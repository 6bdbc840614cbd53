// dlock/error.hpp: the one error model of dlock.
//
// Every failure is a `std::error_code` in the `dlock::errc` category. Calls that follow the
// standard shape (blocking `lock()`, `acquire()`) throw `dlock::Error`, a `std::system_error`
// that also names the store, the key and the step that failed. No dlock destructor throws.
#pragma once

#include <string>
#include <system_error>

#include "dlock/export.hpp"

namespace dlock {

/// What went wrong, independent of the store.
enum class errc {
  /// A bad argument: empty or oversized key, TTL out of range, malformed URL or option.
  invalid_argument = 1,
  /// The call's deadline passed before it could finish.
  timeout,
  /// The call's stop token was triggered.
  cancelled,
  /// The caller does not hold the lock (never acquired, released, expired or taken over).
  not_held,
  /// The lock was lost while it was held (renewal rejected or impossible).
  lock_lost,
  /// The store could not be reached or did not answer in time.
  unavailable,
  /// The store rejected the credentials or the user lacks a permission.
  auth_failed,
  /// The store answered something dlock does not understand, or an unexpected error.
  protocol_error,
  /// The store object (or its manager) was closed.
  closed,
  /// A named service or object does not exist.
  not_found,
  /// A named service or object already exists.
  already_exists,
  /// The store does not support the requested operation.
  unsupported,
  /// The call would wait for a grant the caller itself holds (e.g. upgrading a read lock to a
  /// write lock): refused instead of deadlocking.
  would_deadlock,
};

/// The category of `dlock::errc`; its name is "dlock".
DLOCK_API const std::error_category& category() noexcept;

/// Makes an error code of the dlock category.
DLOCK_API std::error_code make_error_code(errc e) noexcept;

/// The exception dlock throws. `code()` is in the `dlock::errc` category.
/// `what()` reads "dlock: <store>: key '<key>': <step>: <message>[: <detail>]".
class DLOCK_API Error : public std::system_error {
 public:
  /// Builds an error naming the store scheme (e.g. "redis"), the key (may be empty), the
  /// step (e.g. "acquire", "renew") and a free-text detail (never contains credentials).
  Error(errc code, std::string store, std::string key, std::string step, std::string detail = {});
  /// Same, from an arbitrary error code.
  Error(std::error_code code, std::string store, std::string key, std::string step,
        std::string detail = {});

  /// The store's scheme, e.g. "memory", "redis", "etcd".
  const std::string& store() const noexcept { return store_; }
  /// The lock key the call was about, or empty.
  const std::string& key() const noexcept { return key_; }
  /// The step that failed, e.g. "connect", "acquire", "release", "renew".
  const std::string& step() const noexcept { return step_; }
  /// Extra detail, e.g. the store's own error message.
  const std::string& detail() const noexcept { return detail_; }
  /// "dlock: <store>: key '<key>': <step>: <message>[: <detail>]".
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string store_, key_, step_, detail_, what_;
};

}  // namespace dlock

namespace std {
template <>
struct is_error_code_enum<dlock::errc> : true_type {};
}  // namespace std
