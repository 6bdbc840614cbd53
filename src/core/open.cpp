#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/url.hpp"
#include "dlock/build_config.hpp"
#include "dlock/store.hpp"

namespace dlock {
namespace detail {

const SchemeTable& scheme_table() {
  static const SchemeTable table = [] {
    SchemeTable t;
    add_memory_schemes(t);
#if DLOCK_WITH_FILE
    add_file_schemes(t);
#endif
#if DLOCK_WITH_REDIS
    add_redis_schemes(t);
#endif
#if DLOCK_WITH_ETCD
    add_etcd_schemes(t);
#endif
#if DLOCK_WITH_POSTGRES
    add_postgres_schemes(t);
#endif
#if DLOCK_WITH_ZOOKEEPER
    add_zookeeper_schemes(t);
#endif
    return t;
  }();
  return table;
}

}  // namespace detail

Store open(std::string_view url, const Context& ctx) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    throw Error(errc::invalid_argument, "", "", "open",
                "expected a URL like memory://, file:///dir, redis://host:6379, etcd://host:2379");
  }
  auto scheme = url.substr(0, sep);
  const auto& table = detail::scheme_table();
  auto it = table.find(scheme);
  if (it == table.end()) {
    std::string known;
    for (auto& [k, f] : table) known += (known.empty() ? "" : ", ") + k;
    throw Error(errc::invalid_argument, std::string(scheme.substr(0, 32)), "", "open",
                "unknown URL scheme (this build knows: " + known + ")");
  }
  auto backend = it->second(std::string(url), ctx);
  // Re-parse only to redact: the factory validated the URL.
  auto redacted = detail::parse_url(url, 0).redacted();
  return detail::make_store(std::move(backend), std::move(redacted));
}

std::vector<std::string> supported_schemes() {
  std::vector<std::string> out;
  for (auto& [k, f] : detail::scheme_table()) out.push_back(k);
  return out;
}

}  // namespace dlock
