#include "postgres/statements.hpp"

#include <cstdio>
#include <map>

namespace dlock::detail::postgres {
namespace {

std::string quote(const std::string& ident) { return "\"" + ident + "\""; }

// `TTL ms` from now on the server's clock.
const char* const kExpiry = "clock_timestamp() + $%d::bigint * interval '1 millisecond'";

std::string expiry(int param) {
  char buf[96];
  std::snprintf(buf, sizeof buf, kExpiry, param);
  return buf;
}

// Remaining milliseconds of a row's lease, rounded up, never negative.
const char* const kRemaining =
    "greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::bigint";

Statement make(int id, const char* name, std::string sql, int params) {
  return Statement{id, std::string("dlock_") + name, std::move(sql), params};
}

}  // namespace

Statements::Statements(const std::string& name) {
  const auto dot = name.find('.');
  const std::string schema = dot == std::string::npos ? "" : quote(name.substr(0, dot)) + ".";
  const std::string base = dot == std::string::npos ? name : name.substr(dot + 1);
  table = schema + quote(base);
  sequence = schema + quote(base + "_fencing");
  const std::string live = "expires_at > clock_timestamp()";

  // A free (expired or released) row is taken over in place: the insert meets the row's
  // conflict, locks the row and only then checks that it is free and the cutoff ($5 ms after
  // the statement arrived) has not passed, and draws the fencing token, so the token exceeds
  // every token that row had. A live row (as the statement's snapshot sees it) is only read:
  // a losing attempt locks nothing and writes nothing (no transaction id, no WAL flush),
  // except that a listening waiter ($6 > 0) refreshes the row's waited_until when it is
  // stale, so that the holder's release notifies. The third column says whether a release
  // will notify (false: retry at once rather than wait for a notification that may not come).
  const std::string cutoff =
      "clock_timestamp() < statement_timestamp() + $5::bigint * interval '1 millisecond'";
  const std::string fresh =
      "waited_until >= clock_timestamp() + $6::bigint / 2 * interval '1 millisecond'";
  acquire = make(0, "acquire",
                 "WITH won AS (INSERT INTO " + table +
                     " AS l (name, token, fencing, mode, metadata, acquired_at, expires_at)"
                     " SELECT $1, $2, nextval('" +
                     sequence +
                     "'), 'exclusive', $3,"
                     " clock_timestamp(), " +
                     expiry(4) + " WHERE NOT EXISTS (SELECT 1 FROM " + table +
                     " WHERE name = $1 AND " + live + ") AND " + cutoff +
                     " ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token,"
                     " fencing = nextval('" +
                     sequence +
                     "'), mode = EXCLUDED.mode,"
                     " metadata = EXCLUDED.metadata, acquired_at = EXCLUDED.acquired_at,"
                     " expires_at = EXCLUDED.expires_at"
                     " WHERE l.expires_at <= clock_timestamp() AND " +
                     cutoff +
                     " RETURNING l.fencing),"
                     " marked AS (UPDATE " +
                     table + " SET waited_until = " + expiry(6) +
                     " WHERE $6::bigint > 0 AND name = $1 AND " + live + " AND NOT (" + fresh +
                     ") AND NOT EXISTS (SELECT 1 FROM won) RETURNING 1)"
                     " SELECT true, fencing, true FROM won"
                     " UNION ALL SELECT false, " +
                     kRemaining + ", $6::bigint = 0 OR " + fresh +
                     " OR EXISTS (SELECT 1 FROM marked) FROM " + table + " WHERE name = $1 AND " +
                     live + " AND NOT EXISTS (SELECT 1 FROM won)",
                 6);
  renew = make(1, "renew",
               "UPDATE " + table + " SET expires_at = " + expiry(3) +
                   " WHERE name = $1 AND token = $2 AND " + live,
               3);
  renew_many = make(2, "renew_many",
                    "UPDATE " + table +
                        " AS l SET expires_at = clock_timestamp() + x.ttl *"
                        " interval '1 millisecond'"
                        " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(name, token, ttl)"
                        " WHERE l.name = x.name AND l.token = x.token AND"
                        " l.expires_at > clock_timestamp() RETURNING l.token",
                    3);
  // Only a lock somebody waits for is announced: a NOTIFY signals every listening session
  // of the database, whatever its channels.
  release = make(3, "release",
                 "WITH freed AS (UPDATE " + table +
                     " SET expires_at = '-infinity' WHERE name = $1 AND token = $2 AND " + live +
                     " RETURNING waited_until) SELECT CASE WHEN waited_until > clock_timestamp()"
                     " THEN pg_notify($3, '" +
                     kReleasedPayload + "') END FROM freed",
                 3);
  force_release =
      make(4, "force_release",
           "WITH freed AS (UPDATE " + table + " SET expires_at = '-infinity' WHERE name = $1 AND " +
               live + " RETURNING token) SELECT pg_notify($2, '" + kForcedPayload +
               "'), pg_notify($3, token) FROM freed",
           3);
  inspect = make(5, "inspect",
                 "SELECT mode, fencing, " + std::string(kRemaining) + ", metadata FROM " + table +
                     " WHERE name = $1 AND " + live + " ORDER BY acquired_at",
                 1);
  list =
      make(6, "list",
           "SELECT name, mode, fencing, " + std::string(kRemaining) + ", metadata FROM " + table +
               " WHERE " + live + " AND starts_with(name, $1) ORDER BY name, acquired_at",
           1);
  clean_up = make(7, "clean_up",
                  "DELETE FROM " + table + " WHERE expires_at < clock_timestamp() - interval '" +
                      kRowRetention + "'",
                  0);
  shape = make(8, "shape",
               "SELECT c.oid::bigint, c.relkind::text,"
               " (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||"
               " CASE WHEN a.attnotnull AND NOT a.atthasdef THEN ' required' ELSE '' END, ','"
               " ORDER BY a.attnum) FROM pg_attribute a"
               " WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
               " EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
               " AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisunique AND"
               " i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = 'name'),"
               " (SELECT s.relkind::text FROM pg_class s WHERE s.oid = to_regclass($2)),"
               " has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')"
               " AND has_table_privilege(c.oid, 'UPDATE'),"
               " (SELECT has_sequence_privilege(s.oid, 'USAGE') FROM pg_class s"
               " WHERE s.oid = to_regclass($2) AND s.relkind = 'S'),"
               " c.relpersistence = 'p'"
               " FROM pg_class c WHERE c.oid = to_regclass($1)",
               2);
}

std::string Statements::create_sql() const {
  // fillfactor leaves room on each page, so the updates of a lock's row stay HOT (no index
  // change: the name never changes).
  return "CREATE SEQUENCE IF NOT EXISTS " + sequence + "; CREATE TABLE IF NOT EXISTS " + table +
         " (name text COLLATE \"C\" PRIMARY KEY, token text NOT NULL, fencing bigint NOT NULL,"
         " mode text NOT NULL, metadata text NOT NULL, acquired_at timestamptz NOT NULL,"
         " expires_at timestamptz NOT NULL,"
         " waited_until timestamptz NOT NULL DEFAULT '-infinity') WITH (fillfactor = 70)";
}

std::string Statements::create_sequence_sql() const {
  return "CREATE SEQUENCE IF NOT EXISTS " + sequence + "; SELECT setval('" + sequence +
         "', greatest((SELECT max(fencing) FROM " + table + "), 1))";
}

const std::vector<Column>& required_columns() {
  static const std::vector<Column> cols = {{"name", "text"},
                                           {"token", "text"},
                                           {"fencing", "bigint"},
                                           {"mode", "text"},
                                           {"metadata", "text"},
                                           {"acquired_at", "timestamp with time zone"},
                                           {"expires_at", "timestamp with time zone"},
                                           {"waited_until", "timestamp with time zone"}};
  return cols;
}

std::string shape_problem(const std::string& relkind, const std::string& columns, bool unique_name,
                          const std::string& sequence_relkind) {
  if (relkind != "r" && relkind != "p") return "it is not a table (relkind " + relkind + ")";
  std::map<std::string, std::pair<std::string, bool>> have;  // name -> (type, required)
  for (std::size_t start = 0; start < columns.size();) {
    auto end = columns.find(',', start);
    if (end == std::string::npos) end = columns.size();
    std::string col = columns.substr(start, end - start);
    start = end + 1;
    bool required = false;
    if (col.ends_with(" required")) {
      required = true;
      col.resize(col.size() - 9);
    }
    const auto sp = col.find(' ');
    have[col.substr(0, sp)] = {sp == std::string::npos ? "" : col.substr(sp + 1), required};
  }
  for (const Column& c : required_columns()) {
    auto it = have.find(c.name);
    if (it == have.end()) return std::string("column ") + c.name + " is missing";
    if (it->second.first != c.type) {
      return std::string("column ") + c.name + " is " + it->second.first + ", not " + c.type;
    }
    have.erase(it);
  }
  for (auto& [name, t] : have) {
    if (t.second) return "extra column " + name + " is NOT NULL without a default";
  }
  if (!unique_name) return "no primary key or unique index on (name) alone";
  if (!sequence_relkind.empty() && sequence_relkind != "S") {
    return "its fencing sequence's name is taken by something that is not a sequence";
  }
  return {};
}

std::string channel_name(std::uint32_t table_oid, std::string_view key) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64.
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "dlock_%u_%016llx", table_oid, static_cast<unsigned long long>(h));
  return buf;
}

std::string holders_channel_name(std::uint32_t table_oid) {
  return "dlock_" + std::to_string(table_oid) + "_holders";
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace dlock::detail::postgres
