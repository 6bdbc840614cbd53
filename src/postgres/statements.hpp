// The SQL of the PostgreSQL store: the lock table's schema, the statements that acquire,
// renew, release and read locks (one statement each, prepared on every connection), the
// check of an existing table's shape, and the names of the LISTEN/NOTIFY channels.
// docs/stores/postgres.md documents all of it; bench/pg_raw.cpp runs the same statements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postgres/connection.hpp"

namespace dlock::detail::postgres {

/// The payload of a lock channel's notification (it wakes the lock's waiters).
inline constexpr char kReleasedPayload[] = "r";  ///< Released by its holder.
inline constexpr char kForcedPayload[] = "f";    ///< Force-released by an operator.

/// How long a freed or expired row stays before the clean-up deletes it. It must exceed the
/// longest statement (request_timeout is at most 10 min): see docs/stores/postgres.md on why
/// rows of free locks are kept at all (fencing tokens).
inline constexpr char kRowRetention[] = "1 hour";

/// The statements of one lock table.
struct Statements {
  /// `table` as validated by the config: `name` or `schema.name`.
  explicit Statements(const std::string& table);

  std::string table;     ///< Quoted: "schema"."name" or "name".
  std::string sequence;  ///< Quoted fencing sequence: "<name>_fencing" in the same schema.

  /// $1 name, $2 token, $3 metadata, $4 ttl ms, $5 cutoff ms (a row is taken over only
  /// within that long of the statement's arrival, so a statement that waited on a row lock
  /// past the caller's give-up cannot grant behind its back), $6 wait marker ms (a listening
  /// waiter: keep the row's waited_until at least half that far ahead; 0: not listening) ->
  /// one row (won, fencing or the holder's remaining ms, whether a release will notify), or
  /// none when the holder's row is not visible to the statement.
  Statement acquire;
  /// $1 name, $2 token, $3 ttl ms -> affected rows 1 if the token holds the lock.
  Statement renew;
  /// $1 names[], $2 tokens[], $3 ttls[] -> the tokens that still held their lock.
  Statement renew_many;
  /// $1 name, $2 token, $3 channel -> one row if the token held the lock (then NOTIFY 'r' if
  /// somebody waits: waited_until is ahead).
  Statement release;
  /// $1 name, $2 lock channel, $3 holders channel -> one row per holder removed (NOTIFY 'f'
  /// on the lock channel, and the removed token on the holders channel).
  Statement force_release;
  /// $1 name -> mode, fencing, remaining ms, metadata of the live holders.
  Statement inspect;
  /// $1 prefix -> name, mode, fencing, remaining ms, metadata of live holders, by name.
  Statement list;
  /// No parameters: deletes rows freed or expired longer than kRowRetention ago.
  Statement clean_up;

  /// Creates the sequence and the table when missing (simple query, one transaction).
  std::string create_sql() const;
  /// Creates the sequence alone, started above every fencing token in the table (for a
  /// table whose sequence was dropped).
  std::string create_sequence_sql() const;
  /// $1 table, $2 sequence (as regclass text) -> one row when the table exists: its oid,
  /// relkind, columns ("name type[ required]" comma-joined), whether a unique index covers
  /// exactly `name`, the sequence's relkind (NULL when missing), whether the user may SELECT,
  /// INSERT and UPDATE the table, whether it may use the sequence (NULL when missing), and
  /// whether the table is logged (survives crash recovery; not UNLOGGED or TEMPORARY).
  Statement shape;
};

/// The columns the table must have, as `format_type` names them.
struct Column {
  const char* name;
  const char* type;
};
/// name text, token text, fencing bigint, mode text, metadata text, acquired_at,
/// expires_at and waited_until timestamptz.
const std::vector<Column>& required_columns();

/// Checks a `shape` row; returns "" when the table fits, else what is wrong.
std::string shape_problem(const std::string& relkind, const std::string& columns, bool unique_name,
                          const std::string& sequence_relkind);

/// The LISTEN/NOTIFY channel of `key` in the table with `table_oid`:
/// "dlock_<oid>_<16 hex digits of FNV-1a 64 of the key>" (a valid unquoted identifier).
std::string channel_name(std::uint32_t table_oid, std::string_view key);

/// The table's channel for holders: "dlock_<oid>_holders"; a force release publishes the
/// token it removed there.
std::string holders_channel_name(std::uint32_t table_oid);

/// A text[] literal holding `items` (each double-quoted and escaped).
std::string text_array(const std::vector<std::string>& items);

}  // namespace dlock::detail::postgres
