#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/logging.hpp"

namespace dlock {

namespace {

struct Sink {
  LogSink fn;
  LogLevel min = LogLevel::off;
};

// The level is read on every event, the sink only when a record is made.
std::atomic<int> g_min{static_cast<int>(LogLevel::off)};
std::mutex g_mu;
std::shared_ptr<const Sink> g_sink;

std::shared_ptr<const Sink> current_sink() {
  std::lock_guard lk(g_mu);
  return g_sink;
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

void append_value(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      break;
  }
  return "off";
}

std::string_view LogRecord::field(std::string_view name) const noexcept {
  for (const auto& f : fields) {
    if (f.name == name) return f.value;
  }
  return {};
}

void set_log_sink(LogSink sink, LogLevel min_level) {
  if (!sink) min_level = LogLevel::off;
  auto next = std::make_shared<const Sink>(Sink{std::move(sink), min_level});
  std::lock_guard lk(g_mu);
  g_sink = std::move(next);
  g_min.store(static_cast<int>(min_level), std::memory_order_relaxed);
}

std::string format_text(const LogRecord& record) {
  std::string out(to_string(record.level));
  out += ' ';
  out += record.message;
  for (const auto& f : record.fields) {
    out += ' ';
    out += f.name;
    out += '=';
    append_value(out, f.value);
  }
  return out;
}

std::string format_json(const LogRecord& record) {
  nlohmann::ordered_json j;
  j["level"] = to_string(record.level);
  j["message"] = record.message;
  for (const auto& f : record.fields) j[std::string(f.name)] = f.value;
  // Keys and error texts are bytes, not always UTF-8: replace what is not.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
  return level != LogLevel::off && static_cast<int>(level) >= g_min.load(std::memory_order_relaxed);
}

void log_lock(LogLevel level, std::string_view message, const LockEvent& event,
              std::error_code error, std::initializer_list<LogField> extra) noexcept {
  if (!log_enabled(level)) return;
  try {
    std::vector<LogField> fields;
    fields.reserve(4 + extra.size());
    fields.push_back({"store", std::string(event.store)});
    fields.push_back({"key", std::string(event.key)});
    if (event.fencing != 0) fields.push_back({"fencing", std::to_string(event.fencing)});
    if (error) fields.push_back({"error", error.message()});
    for (const auto& f : extra) fields.push_back(f);
    auto sink = current_sink();
    if (!sink || !sink->fn || level < sink->min) return;
    sink->fn(LogRecord{level, message, fields});
  } catch (...) {
    // A sink's exception must not cross into a dlock thread.
  }
}

}  // namespace detail

}  // namespace dlock
