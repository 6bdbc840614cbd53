// Raw libpq peers: P1/P2's limit (dlock's own acquire and release statements from blocking
// libpq loops, prepared once per connection) and the P3 counter.
#include <libpq-fe.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"
#include "dlock/dlock.hpp"
#include "src/postgres/statements.hpp"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;
namespace pg = dlock::detail::postgres;

class Conn {
 public:
  explicit Conn(const std::string& uri) : c_(PQconnectdb(uri.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(c_);
      PQfinish(c_);
      throw std::runtime_error("postgres connect failed: " + msg);
    }
  }
  ~Conn() { PQfinish(c_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  void prepare(const pg::Statement& s) {
    PGresult* r = PQprepare(c_, s.name.c_str(), s.sql.c_str(), s.params, nullptr);
    check(r, s.name);
    PQclear(r);
  }
  // Runs a prepared statement; returns the number of rows (or -1 on error).
  int run(const pg::Statement& s, const std::vector<const char*>& args) {
    PGresult* r = PQexecPrepared(c_, s.name.c_str(), static_cast<int>(args.size()), args.data(),
                                 nullptr, nullptr, 0);
    const auto st = PQresultStatus(r);
    int rows = st == PGRES_TUPLES_OK ? PQntuples(r) : (st == PGRES_COMMAND_OK ? 0 : -1);
    PQclear(r);
    return rows;
  }
  std::string value(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    check(r, sql);
    std::string v = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return v;
  }

 private:
  static void check(PGresult* r, const std::string& what) {
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string msg = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(what + ": " + msg);
    }
  }
  PGconn* c_;
};

// One raw client: dlock's acquire (winning) and release statements with dlock's arguments.
struct PairLoop {
  PairLoop(const std::string& uri, const pg::Statements& stmts, std::uint32_t oid)
      : conn(uri), s(stmts), oid(oid) {
    conn.prepare(s.acquire);
    conn.prepare(s.release);
  }
  bool acquire(const std::string& key) {
    return conn.run(s.acquire, {key.c_str(), kToken, kMeta, "10000", "4500", "0"}) == 1;
  }
  bool release(const std::string& key) {
    const std::string channel = pg::channel_name(oid, key);
    return conn.run(s.release, {key.c_str(), kToken, channel.c_str()}) == 1;
  }
  static constexpr const char* kToken = "0123456789abcdef0123456789abcdef";
  static constexpr const char* kMeta = R"({"host":"bench","pid":1,"t":1700000000000})";
  Conn conn;
  const pg::Statements& s;
  std::uint32_t oid;
};

}  // namespace

RawResult raw_pg_pairs(const std::string& uri, const std::string& table, long iters, long workers,
                       double secs) {
  // The table exists (dlock makes it), as it would for dlock's own run.
  dlock::open(uri + (uri.find('?') == std::string::npos ? "?" : "&") + "table=" + table).close();
  const pg::Statements stmts(table);
  const auto oid = static_cast<std::uint32_t>(
      std::stoul(Conn(uri).value("SELECT '" + table + "'::regclass::oid")));
  RawResult out;
  if (workers <= 1) {
    PairLoop loop(uri, stmts, oid);
    out.lat_us.reserve(static_cast<std::size_t>(iters));
    rusage ru0{};
    getrusage(RUSAGE_SELF, &ru0);
    auto t0 = clock_type::now();
    for (long i = 0; i < iters; ++i) {
      const std::string key = "bench/p1/raw/" + std::to_string(i % 64);
      auto s = clock_type::now();
      bool ok = loop.acquire(key);
      out.lat_us.push_back(
          std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
      ok = loop.release(key) && ok;
      if (ok) out.pairs++;
    }
    out.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "libpq PQexecPrepared of dlock's acquire + release statements, one "
                  "connection; context switches/pair %.1f",
                  static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw - ru0.ru_nvcsw - ru0.ru_nivcsw) /
                      std::max<double>(1, static_cast<double>(out.pairs)));
    out.note = buf;
    return out;
  }
  std::vector<std::unique_ptr<PairLoop>> loops;
  for (long w = 0; w < workers; ++w) loops.push_back(std::make_unique<PairLoop>(uri, stmts, oid));
  std::atomic<long> pairs{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  clock_type::time_point t0;
  for (long w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      while (!go) std::this_thread::yield();
      const auto stop_at = t0 + std::chrono::duration<double>(secs);
      const std::string key = "bench/p2/raw/" + std::to_string(w);
      auto& loop = *loops[static_cast<std::size_t>(w)];
      while (clock_type::now() < stop_at) {
        if (loop.acquire(key) && loop.release(key)) pairs++;
      }
    });
  }
  t0 = clock_type::now();
  go = true;
  for (auto& t : threads) t.join();
  out.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  out.pairs = pairs;
  out.note = "libpq PQexecPrepared of dlock's statements, one connection per worker";
  return out;
}

namespace {

class PgCounter final : public Counter {
 public:
  PgCounter(const std::string& uri, std::string key) : conn_(uri), key_(std::move(key)) {
    conn_.value(
        "CREATE TABLE IF NOT EXISTS dlock_bench_counter (k text PRIMARY KEY, v bigint NOT NULL)");
  }
  long get() override {
    auto v = conn_.value("SELECT v FROM dlock_bench_counter WHERE k = '" + key_ + "'");
    return v.empty() ? 0 : std::stol(v);
  }
  void set(long v) override {
    conn_.value("INSERT INTO dlock_bench_counter VALUES ('" + key_ + "', " + std::to_string(v) +
                ") ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v");
  }

 private:
  Conn conn_;
  std::string key_;  // A fixed bench name (no quoting needed).
};

}  // namespace

std::unique_ptr<Counter> make_pg_counter(const std::string& uri, const std::string& key) {
  return std::make_unique<PgCounter>(uri, key);
}

}  // namespace bench
