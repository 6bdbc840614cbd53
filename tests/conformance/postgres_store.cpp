// postgres:// in the conformance suite: one PostgreSQL cluster (initdb in a temporary
// directory) on a free loopback port, with the fault suite's hooks: a crash of the server and
// every backend (the lock rows survive: crash recovery), a restart, the port for the proxy.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_POSTGRES
#include "conformance/store_kinds.hpp"
#include "integration/postgres/pg_server.hpp"

namespace {
class PostgresEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return server_.url("table=conformance_locks"); }
  bool kill_server() override {
    server_.kill();
    return true;
  }
  bool restart_server() override {
    server_.start();
    return true;
  }
  std::uint16_t server_port() override { return server_.port(); }

 private:
  dlock::test::PostgresServer server_;
};
}  // namespace

DLOCK_CONFORMANCE_STORE(postgres, [] { return std::make_unique<PostgresEnv>(); });
#endif
