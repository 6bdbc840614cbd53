// dlock/log.hpp: a hook that shows what the library does to its locks (acquired, renewed,
// renewal failed, at risk, recovered, lost, released), for the application's own logger.
//
// One sink per process, off until set. Each record is a short fixed message and structured
// fields (always `store` and `key`, then what the event has: `fencing`, `error`, `reason`,
// `waited_ms`), so it maps onto spdlog, glog, journald or JSON lines without parsing text.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "dlock/export.hpp"

namespace dlock {

/// How much a record matters. `debug` is one record per operation (acquired, renewed,
/// released); `info` a change worth knowing (recovered, an acquisition given up); `warning` a
/// grant in danger (renewal failed, at risk, a release that found the lock gone); `error` a
/// lost lock.
enum class LogLevel { debug, info, warning, error, off };

/// "debug", "info", "warning", "error" or "off".
DLOCK_API std::string_view to_string(LogLevel level) noexcept;

/// One structured field of a record.
struct LogField {
  std::string_view name;
  std::string value;
};

/// What a sink receives. The views are valid only during the call.
struct LogRecord {
  LogLevel level = LogLevel::info;
  /// A fixed message per event ("acquired", "renewal failed", "lost", ...).
  std::string_view message;
  std::span<const LogField> fields;

  /// The value of the field `name`, or an empty view.
  std::string_view field(std::string_view name) const noexcept;
};

/// Receives records on the dlock thread where the event happened (a caller's thread, the
/// renewal scheduler, a store's I/O thread). It must return quickly and must not throw (an
/// exception is swallowed); it may call into dlock, as no dlock lock is held during the call.
/// A loss is logged before its signals fire (a `lost_token()` taken before the loss, the
/// `on_lost` callbacks).
using LogSink = std::function<void(const LogRecord&)>;

/// Sends every record at `min_level` or above to `sink`, for the whole process (replacing any
/// previous sink). An empty sink, or `LogLevel::off`, turns logging off; with logging off a
/// record costs one atomic load. Thread-safe; a record being delivered while the sink is
/// replaced still reaches the old sink.
DLOCK_API void set_log_sink(LogSink sink, LogLevel min_level = LogLevel::info);

/// `level message name=value ...`, one line without a newline; values with spaces, quotes
/// or `=` are quoted.
DLOCK_API std::string format_text(const LogRecord& record);

/// A JSON object: `{"level":"...","message":"...","<name>":"<value>",...}`.
DLOCK_API std::string format_json(const LogRecord& record);

}  // namespace dlock
