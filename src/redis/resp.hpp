// RESP values and the two halves of the wire format, both delegated to hiredis: command
// formatting (`redisFormatCommandArgv`) and incremental reply parsing (its reader).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlock::detail::redis {

/// One reply as parsed from the wire.
struct RespValue {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  std::string str;  ///< string, status and error text.
  long long integer = 0;
  std::vector<RespValue> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
};

/// Formats one command (binary-safe arguments) as RESP bytes.
std::string format_command(const std::vector<std::string_view>& args);

/// Incremental reply parser: feed bytes, then pull complete replies.
class RespParser {
 public:
  RespParser();
  ~RespParser();
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  /// Appends bytes read from the socket.
  void feed(const char* data, std::size_t size);
  /// The next complete reply, or nullopt if more bytes are needed. Throws
  /// `std::runtime_error` on malformed input (the connection must then be dropped).
  std::optional<RespValue> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlock::detail::redis
