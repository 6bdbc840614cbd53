// The one place where gRPC/etcd errors become dlock error codes, and the result type of the
// etcd client's calls.
//
// The client knows nothing of lock keys or of the store's steps: a call returns its answer or
// a `Failure` (a dlock code and etcd's text). The stores turn a failure into an `Error` that
// names the store, the key and the step, in one helper (`EtcdBackend::checked`).
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "dlock/context.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::etcd {

/// Why a call failed: a `dlock::errc` code and a detail text (etcd's own message or what the
/// client saw; never a credential). Empty (false) when the call succeeded.
struct Failure {
  std::error_code code{};
  std::string detail{};
  explicit operator bool() const noexcept { return static_cast<bool>(code); }
};

/// A failure with `code` and `detail`.
inline Failure fail(errc code, std::string detail = {}) {
  return Failure{make_error_code(code), std::move(detail)};
}

/// A call's answer, or why there is none.
template <class T>
struct Reply {
  T value{};
  Failure failure{};
  bool ok() const noexcept { return !failure; }
  /// The failure's code (empty on success).
  std::error_code code() const noexcept { return failure.code; }
};

/// The `Error` for `failure`, naming the store `scheme`, `key` (may be empty) and `step`.
Error to_error(const Failure& failure, std::string_view scheme, std::string_view key,
               std::string_view step);

/// The dlock code for a failed call. `ctx` tells a caller's deadline or cancel (timeout /
/// cancelled) from the store not answering within the request timeout (unavailable).
errc map_status(const grpc::Status& status, const Context& ctx);

/// The failure of a call that ended with `status`: the mapped code and etcd's message.
Failure status_failure(const grpc::Status& status, const Context& ctx);

/// etcd's "invalid auth token" (the token expired or the member restarted): authenticate
/// again and retry.
bool is_invalid_token(const grpc::Status& status);

/// etcd's "requested lease not found" (the lease expired or was revoked).
bool is_lease_not_found(const grpc::Status& status);

/// Failures worth retrying within the call's deadline: no leader, leader changed, member
/// unreachable.
bool is_transient(const grpc::Status& status);

}  // namespace dlock::detail::etcd
