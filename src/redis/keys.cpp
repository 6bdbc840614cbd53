#include "redis/keys.hpp"

#include <algorithm>
#include <charconv>

namespace dlock::detail::redis {

using std::chrono::milliseconds;

LockKeys::LockKeys(const std::string& prefix, const std::string& name)
    : lock(prefix + name),
      fence("{" + lock + "}:fence"),
      meta("{" + lock + "}:meta"),
      queue("{" + lock + "}:queue"),
      qexp("{" + lock + "}:qexp"),
      qdata("{" + lock + "}:qdata"),
      wake("{" + lock + "}:wake:"),
      revoked("{" + lock + "}:revoked") {}

std::uint64_t parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string glob_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

bool is_companion(std::string_view key) {
  return !key.empty() && key.front() == '{' &&
         (key.ends_with("}:fence") || key.ends_with("}:meta"));
}

std::optional<Backend::Inspection> parse_inspection(const std::string& key, const RespValue& r) {
  Backend::Inspection out{key, {}, {}};
  if (r.elements.size() != 5) return std::nullopt;
  out.waiters = static_cast<std::uint64_t>(std::max<long long>(0, r.elements[4].integer));
  if (r.elements[0].integer != 1) return out;
  const std::string& token = r.elements[1].str;
  const long long pttl = r.elements[2].integer;
  const std::string& meta = r.elements[3].str;
  Backend::Holder h;
  h.ttl_remaining = pttl >= 0 ? milliseconds(pttl) : milliseconds(-1);
  // The metadata counts only if it is this holder's (a foreign client writes none).
  if (!token.empty() && meta.starts_with(token) && meta.size() > token.size() &&
      meta[token.size()] == '\n') {
    auto rest = std::string_view(meta).substr(token.size() + 1);
    auto nl = rest.find('\n');
    if (nl != std::string_view::npos) {
      h.fencing_token = parse_u64(rest.substr(0, nl));
      h.metadata = std::string(rest.substr(nl + 1));
    }
  }
  out.holders.push_back(std::move(h));
  return out;
}

}  // namespace dlock::detail::redis
