// The one place where gRPC/etcd errors become dlock errors.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "dlock/context.hpp"
#include "dlock/error.hpp"

namespace dlock::detail::etcd {

/// The dlock code for a failed call. `ctx` tells a caller's deadline or cancel (timeout /
/// cancelled) from the store not answering within the request timeout (unavailable).
errc map_status(const grpc::Status& status, const Context& ctx);

/// An `Error` for a failed call: the mapped code, the store, key and step, and etcd's message
/// (which never contains credentials).
Error status_error(const grpc::Status& status, const Context& ctx, std::string_view scheme,
                   std::string_view key, std::string_view step);

/// etcd's "invalid auth token" (the token expired or the member restarted): authenticate
/// again and retry.
bool is_invalid_token(const grpc::Status& status);

/// etcd's "requested lease not found" (the lease expired or was revoked).
bool is_lease_not_found(const grpc::Status& status);

/// Failures worth retrying within the call's deadline: no leader, leader changed, member
/// unreachable.
bool is_transient(const grpc::Status& status);

}  // namespace dlock::detail::etcd
