#include "postgres/connection.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <optional>
#include <stop_token>

#include "dlock/error.hpp"
#include "postgres/errors.hpp"

namespace dlock::detail::postgres {
namespace {

using std::chrono::milliseconds;

const char* const kScheme = "postgres";

void ignore_notice(void*, const char*) {}

// Writes the eventfd when a stop is requested, so that poll(2) wakes at once.
struct StopWake {
  int fd;
  void operator()() const noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
  }
};

}  // namespace

long Result::affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  long v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

std::string Result::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

long long Result::integer(int row, int col) const {
  if (is_null(row, col)) return 0;
  const char* v = PQgetvalue(r_.get(), row, col);
  long long out = 0;
  std::from_chars(v, v + PQgetlength(r_.get(), row, col), out);
  return out;
}

bool Result::boolean(int row, int col) const {
  return !is_null(row, col) && PQgetvalue(r_.get(), row, col)[0] == 't';
}

Connection::Connection(PGconn* c, milliseconds request_timeout)
    : conn_(c), request_timeout_(request_timeout) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Connection::~Connection() {
  PQfinish(conn_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::unique_ptr<Connection> Connection::connect(const ConnectParams& p, const Context& ctx,
                                                const std::string& key, const char* step) {
  std::vector<const char*> keys, values;
  for (auto& [k, v] : p.params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* raw = PQconnectStartParams(keys.data(), values.data(), 0);
  if (raw == nullptr) throw Error(errc::unavailable, kScheme, key, step, "libpq: out of memory");
  // Owned from here on, so every throw below closes it.
  std::unique_ptr<Connection> c(new Connection(raw, p.request_timeout));
  if (c->wake_fd_ < 0) throw Error(errc::unavailable, kScheme, key, step, "eventfd failed");
  const auto limit = std::min(ctx.deadline(), clock::now() + p.connect_timeout);
  auto failed = [&]() -> std::unique_ptr<Connection> {
    const std::string msg = clean_message(PQerrorMessage(raw));
    throw Error(classify_connect_failure(msg), kScheme, key, step, msg);
  };
  if (PQstatus(raw) == CONNECTION_BAD) return failed();
  std::optional<std::stop_callback<StopWake>> wake;
  if (ctx.stop_token().stop_possible()) wake.emplace(ctx.stop_token(), StopWake{c->wake_fd_});
  // libpq's protocol: start as if PQconnectPoll had asked for a writable socket.
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) return failed();
    const short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    const Wait w = c->wait_socket(events, limit, ctx.stop_token());
    if (w != Wait::ready) {
      if (w == Wait::stopped) throw Error(errc::cancelled, kScheme, key, step);
      if (ctx.expired()) throw Error(errc::timeout, kScheme, key, step, "while connecting");
      throw Error(errc::unavailable, kScheme, key, step,
                  "no connection within connect_timeout (" +
                      std::to_string(p.connect_timeout.count()) + " ms)");
    }
    st = PQconnectPoll(raw);
  }
  PQsetnonblocking(raw, 1);
  PQsetNoticeProcessor(raw, &ignore_notice, nullptr);
  return c;
}

Connection::Wait Connection::wait_socket(short events, clock::time_point limit,
                                         const std::stop_token& stop) {
  for (;;) {
    if (stop.stop_requested()) return Wait::stopped;
    const auto now = clock::now();
    if (now >= limit) return Wait::timeout;
    const auto left = std::chrono::ceil<milliseconds>(limit - now).count();
    const int timeout = static_cast<int>(std::min<long long>(left, 60'000));
    pollfd fds[2] = {{PQsocket(conn_), events, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) return Wait::lost;
    if (fds[1].revents != 0) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
    }
    if (n > 0 && fds[0].revents != 0) return Wait::ready;
  }
}

void Connection::fail_io(const Context& ctx, Wait why, const std::string& key, const char* step) {
  broken_ = true;
  if (why == Wait::stopped) throw Error(errc::cancelled, kScheme, key, step);
  if (why == Wait::timeout) {
    if (ctx.expired()) throw Error(errc::timeout, kScheme, key, step, "waiting for the server");
    throw Error(
        errc::unavailable, kScheme, key, step,
        "no reply within request_timeout (" + std::to_string(request_timeout_.count()) + " ms)");
  }
  throw Error(errc::unavailable, kScheme, key, step,
              "connection lost: " + clean_message(PQerrorMessage(conn_)));
}

Result Connection::collect(const Context& ctx, clock::time_point limit, const std::string& key,
                           const char* step) {
  std::optional<std::stop_callback<StopWake>> wake;
  if (ctx.stop_token().stop_possible()) wake.emplace(ctx.stop_token(), StopWake{wake_fd_});
  // Send everything (non-blocking mode), reading meanwhile so the server never stalls on us.
  for (int f; (f = PQflush(conn_)) != 0;) {
    if (f < 0) fail_io(ctx, Wait::lost, key, step);
    const Wait w = wait_socket(POLLIN | POLLOUT, limit, ctx.stop_token());
    if (w != Wait::ready) fail_io(ctx, w, key, step);
    if (!PQconsumeInput(conn_)) fail_io(ctx, Wait::lost, key, step);
  }
  Result last;
  std::string error_state, error_message;
  for (;;) {
    while (PQisBusy(conn_)) {
      const Wait w = wait_socket(POLLIN, limit, ctx.stop_token());
      if (w != Wait::ready) fail_io(ctx, w, key, step);
      if (!PQconsumeInput(conn_)) fail_io(ctx, Wait::lost, key, step);
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    Result res(r);
    const auto st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
      // The first error is the cause; results after it belong to the aborted rest.
      if (error_message.empty()) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        error_state = state ? state : "";
        error_message = clean_message(PQresultErrorMessage(r));
        if (error_message.empty()) error_message = "error without a message";
      }
    } else {
      last = std::move(res);
    }
  }
  if (PQstatus(conn_) == CONNECTION_BAD) fail_io(ctx, Wait::lost, key, step);
  if (!error_message.empty()) {
    // A client-side failure (no SQLSTATE) leaves the connection in doubt.
    if (error_state.empty()) broken_ = true;
    throw Error(error_state.empty() ? errc::unavailable : classify_sqlstate(error_state), kScheme,
                key, step,
                error_state.empty() ? error_message : error_state + ": " + error_message);
  }
  return last;
}

Result Connection::run(const Statement& s, const std::vector<std::string>& args, const Context& ctx,
                       const std::string& key, const char* step) {
  const auto limit = std::min(ctx.deadline(), clock::now() + request_timeout_);
  if (static_cast<std::size_t>(s.id) >= prepared_.size()) prepared_.resize(s.id + 1, false);
  std::vector<const char*> values;
  values.reserve(args.size());
  for (auto& a : args) values.push_back(a.c_str());
  for (int round = 0;; ++round) {
    if (!prepared_[s.id]) {
      if (!PQsendPrepare(conn_, s.name.c_str(), s.sql.c_str(), s.params, nullptr)) {
        fail_io(ctx, Wait::lost, key, step);
      }
      collect(ctx, limit, key, step);
      prepared_[s.id] = true;
    }
    if (!PQsendQueryPrepared(conn_, s.name.c_str(), static_cast<int>(values.size()), values.data(),
                             nullptr, nullptr, 0)) {
      fail_io(ctx, Wait::lost, key, step);
    }
    try {
      return collect(ctx, limit, key, step);
    } catch (const Error& e) {
      // A pooler or DISCARD ALL dropped our prepared statements: prepare again, once.
      if (round == 0 && !broken_ && e.detail().rfind("26000", 0) == 0) {
        prepared_.assign(prepared_.size(), false);
        continue;
      }
      throw;
    }
  }
}

Result Connection::query(const std::string& sql, const Context& ctx, const std::string& key,
                         const char* step) {
  const auto limit = std::min(ctx.deadline(), clock::now() + request_timeout_);
  if (!PQsendQuery(conn_, sql.c_str())) fail_io(ctx, Wait::lost, key, step);
  return collect(ctx, limit, key, step);
}

bool Connection::usable() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  // An idle connection (never LISTENing) has nothing to say unless the server is closing it:
  // "terminating connection", then EOF. Whatever it says, a fresh connection is safer.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) return false;
  return PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

}  // namespace dlock::detail::postgres
