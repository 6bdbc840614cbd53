// The PostgreSQL store (`postgres://`, `postgresql://`): locks are rows of one table, taken,
// renewed and freed by single statements; waiting and loss reports use LISTEN/NOTIFY.
// See docs/stores/postgres.md.
#pragma once

#include <memory>

#include "core/backend.hpp"
#include "dlock/postgres.hpp"

namespace dlock::detail::postgres {

/// Connects, checks (or creates) the lock table and its sequence. Throws `Error`.
std::shared_ptr<Backend> make_postgres_backend(const PostgresConfig& config, const Context& ctx);

}  // namespace dlock::detail::postgres
