#include "etcd/errors.hpp"

#include <string>

namespace dlock::detail::etcd {

errc map_status(const grpc::Status& status, const Context& ctx) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return errc::protocol_error;  // Not an error; callers never map OK.
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ctx.expired() ? errc::timeout : errc::unavailable;
    case grpc::StatusCode::CANCELLED:
      return ctx.stop_requested() ? errc::cancelled
                                  : (ctx.expired() ? errc::timeout : errc::unavailable);
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // etcd: no space (alarm), too many requests.
    case grpc::StatusCode::ABORTED:
      return errc::unavailable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return errc::auth_failed;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      // etcd answers a wrong password, a missing user ("user name is empty": no credentials
      // while auth is on) and "authentication is not enabled" with these codes.
      if (msg.find("auth") != std::string::npos || msg.find("user name") != std::string::npos ||
          msg.find("invalid user") != std::string::npos) {
        return errc::auth_failed;
      }
      return errc::protocol_error;
    case grpc::StatusCode::NOT_FOUND:
      return msg.find("lease not found") != std::string::npos ? errc::not_held
                                                              : errc::protocol_error;
    default:
      return errc::protocol_error;
  }
}

Failure status_failure(const grpc::Status& status, const Context& ctx) {
  std::string detail = "grpc code " + std::to_string(static_cast<int>(status.error_code()));
  if (!status.error_message().empty()) detail += ": " + status.error_message();
  return Failure{make_error_code(map_status(status, ctx)), std::move(detail)};
}

Error to_error(const Failure& failure, std::string_view scheme, std::string_view key,
               std::string_view step) {
  return Error(failure.code ? failure.code : make_error_code(errc::protocol_error),
               std::string(scheme), std::string(key), std::string(step), failure.detail);
}

bool is_invalid_token(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
         status.error_message().find("invalid auth token") != std::string::npos;
}

bool is_lease_not_found(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::NOT_FOUND &&
         status.error_message().find("lease not found") != std::string::npos;
}

bool is_transient(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  return true;
}

}  // namespace dlock::detail::etcd
