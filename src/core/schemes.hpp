// The table of URL schemes `dlock::open` knows. Each store library adds its schemes here
// through one `add_<store>_schemes` function; open.cpp calls those that were built in.
#pragma once

#include <map>
#include <string>

#include "core/backend.hpp"

namespace dlock::detail {

using SchemeTable = std::map<std::string, BackendFactory, std::less<>>;

void add_memory_schemes(SchemeTable& table);
void add_file_schemes(SchemeTable& table);       // DLOCK_WITH_FILE
void add_redis_schemes(SchemeTable& table);      // DLOCK_WITH_REDIS
void add_etcd_schemes(SchemeTable& table);       // DLOCK_WITH_ETCD
void add_postgres_schemes(SchemeTable& table);   // DLOCK_WITH_POSTGRES
void add_zookeeper_schemes(SchemeTable& table);  // DLOCK_WITH_ZOOKEEPER

/// The table, built once.
const SchemeTable& scheme_table();

}  // namespace dlock::detail
