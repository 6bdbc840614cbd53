#include "postgres/postgres_backend.hpp"

#include <map>
#include <unordered_set>

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "postgres/config.hpp"
#include "postgres/listener.hpp"
#include "postgres/pool.hpp"
#include "postgres/statements.hpp"

namespace dlock::detail::postgres {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* const kScheme = "postgres";

// How long a listening waiter's mark on a lock's row lasts (refreshed by its attempts when
// half is gone; core's backoff makes them at least once a second by default): while it lasts,
// the holder's release notifies.
constexpr milliseconds kWaitMarker{60'000};

// Race-losers of a concurrent CREATE ... IF NOT EXISTS see one of these.
bool lost_create_race(const Error& e) {
  return e.detail().rfind("23505", 0) == 0 || e.detail().rfind("42P07", 0) == 0;
}

// One grant: its lock, its token, and its registration for force-release reports.
class PgGrant final : public GrantState {
 public:
  PgGrant(std::shared_ptr<Listener> listener, std::string key, std::string token)
      : listener_(std::move(listener)), key(std::move(key)), token(std::move(token)) {
    holders_ = listener_->add_holder(this->token, this);
  }
  ~PgGrant() override { listener_->remove_holder(token, holders_); }

 private:
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<Listener::Channel> holders_;

 public:
  const std::string key, token;
};

class PgBackend final : public Backend, public std::enable_shared_from_this<PgBackend> {
 public:
  explicit PgBackend(const PostgresConfig& cfg)
      : cfg_(cfg),
        stmts_(cfg.table),
        pool_(ConnectParams{connection_params(cfg), cfg.connect_timeout, cfg.request_timeout},
              cfg.pool_size) {}
  ~PgBackend() override { close(); }

  // Connects once and checks the table (creating it and its sequence when missing).
  void open(const Context& ctx) {
    auto conn = pool_.get(ctx, "", "connect");
    auto shape = read_shape(*conn, ctx);
    if (shape.rows() == 0) {
      try {
        conn->query(stmts_.create_sql(), ctx, "", "create table");
      } catch (const Error& e) {
        if (!lost_create_race(e)) throw;
      }
      shape = read_shape(*conn, ctx);
      if (shape.rows() == 0) {
        throw Error(errc::protocol_error, kScheme, "", "create table",
                    "table " + cfg_.table + " still missing after CREATE TABLE");
      }
    }
    const std::string problem =
        shape_problem(shape.text(0, 1), shape.text(0, 2), shape.boolean(0, 3), shape.text(0, 4));
    if (!problem.empty()) {
      throw Error(errc::invalid_argument, kScheme, "", "check table",
                  "table " + cfg_.table + " exists but is not a dlock lock table: " + problem +
                      " (see docs/stores/postgres.md for the schema, or pick another table=)");
    }
    if (!shape.boolean(0, 5)) {
      throw Error(errc::auth_failed, kScheme, "", "check table",
                  "the user lacks SELECT, INSERT or UPDATE on table " + cfg_.table);
    }
    if (shape.is_null(0, 4)) {
      // The table without its sequence: a new one starts above every token given so far.
      try {
        conn->query(stmts_.create_sequence_sql(), ctx, "", "create sequence");
      } catch (const Error& e) {
        if (!lost_create_race(e)) throw;
      }
    } else if (!shape.boolean(0, 6)) {
      throw Error(errc::auth_failed, kScheme, "", "check table",
                  "the user lacks USAGE on sequence " + cfg_.table + "_fencing");
    }
    oid_ = static_cast<std::uint32_t>(shape.integer(0, 0));
    durable_ = shape.boolean(0, 7);
    listener_ = std::make_shared<Listener>(
        ConnectParams{connection_params(cfg_), cfg_.connect_timeout, cfg_.request_timeout},
        Listener::Sql{holders_channel_name(oid_), stmts_.clean_up.sql, stmts_.release.sql});
  }

  std::string_view scheme() const override { return kScheme; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.binary_keys = false;  // text keys: no NUL; the server refuses invalid UTF-8.
    c.min_ttl = milliseconds(1);
    c.durable = durable_;  // Committed rows of a logged table survive a server crash.
    c.extends_in_batches = true;
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override;

  GrantResult release(const Context& ctx, GrantState& grant) noexcept override {
    auto& g = static_cast<PgGrant&>(grant);
    return guarded([&] { return GrantResult::held_if(release_token(ctx, g.key, g.token)); });
  }

  GrantResult extend(const Context& ctx, GrantState& grant, milliseconds ttl) noexcept override {
    auto& g = static_cast<PgGrant&>(grant);
    return guarded([&] {
      auto conn = pool_.get(ctx, g.key, "renew");
      auto r = conn->run(stmts_.renew, {g.key, g.token, std::to_string(ttl.count())}, ctx, g.key,
                         "renew");
      return GrantResult::held_if(r.affected() == 1);
    });
  }

  // Renewals due together: one UPDATE over arrays per chunk (one round trip each).
  std::vector<GrantResult> extend_many(const Context& ctx,
                                       std::span<const Extension> items) noexcept override {
    constexpr std::size_t kChunk = 500;
    std::vector<GrantResult> out(items.size());
    if (items.size() == 1) {
      out[0] = extend(ctx, *items[0].grant, items[0].ttl);
      return out;
    }
    for (std::size_t begin = 0; begin < items.size(); begin += kChunk) {
      const std::size_t end = std::min(items.size(), begin + kChunk);
      try {
        std::vector<std::string> names, tokens;
        std::string ttls = "{";
        for (std::size_t i = begin; i < end; ++i) {
          auto& g = static_cast<PgGrant&>(*items[i].grant);
          names.push_back(g.key);
          tokens.push_back(g.token);
          ttls += (i == begin ? "" : ",") + std::to_string(items[i].ttl.count());
        }
        ttls += "}";
        auto conn = pool_.get(ctx, names.front(), "renew");
        auto r = conn->run(stmts_.renew_many, {text_array(names), text_array(tokens), ttls}, ctx,
                           names.front(), "renew");
        std::unordered_set<std::string> kept;
        for (int row = 0; row < r.rows(); ++row) kept.insert(r.text(row, 0));
        for (std::size_t i = begin; i < end; ++i) {
          out[i] = GrantResult::held_if(kept.count(tokens[i - begin]) != 0);
        }
      } catch (const std::system_error& e) {
        for (std::size_t i = begin; i < end; ++i) out[i] = GrantResult::failed(e.code());
      } catch (...) {
        for (std::size_t i = begin; i < end; ++i) {
          out[i] = GrantResult::failed(make_error_code(errc::protocol_error));
        }
      }
    }
    return out;
  }

  Inspection inspect(const Context& ctx, const std::string& key) override {
    auto conn = pool_.get(ctx, key, "inspect");
    auto r = conn->run(stmts_.inspect, {key}, ctx, key, "inspect");
    Inspection out{key, {}, std::nullopt};
    for (int row = 0; row < r.rows(); ++row) {
      out.holders.push_back(holder(r, row, 0));
    }
    return out;
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& prefix) override {
    auto conn = pool_.get(ctx, prefix, "list");
    auto r = conn->run(stmts_.list, {prefix}, ctx, prefix, "list");
    std::vector<Inspection> out;
    for (int row = 0; row < r.rows(); ++row) {
      std::string name = r.text(row, 0);
      if (out.empty() || out.back().key != name) out.push_back({std::move(name), {}, std::nullopt});
      out.back().holders.push_back(holder(r, row, 1));
    }
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    auto conn = pool_.get(ctx, key, "force_release");
    auto r = conn->run(stmts_.force_release, {key, channel(key), holders_channel_name(oid_)}, ctx,
                       key, "force_release");
    return r.rows() > 0;
  }

  void close() noexcept override {
    if (closed_.exchange(true)) return;
    if (listener_) listener_->close();
    pool_.close();
  }

  // ---- for sessions ----

  // One attempt; `listening`: the caller hears the lock's channel (so it marks the row as
  // waited for when it loses).
  Attempt try_acquire(const Context& ctx, const AcquireRequest& req, bool listening) {
    auto conn = pool_.get(ctx, req.key, "acquire");
    // The server takes a lock over only while we still wait for its answer (with a margin
    // for the way back): a statement stuck behind a row lock past our give-up grants nothing.
    const auto budget =
        std::min(std::chrono::ceil<milliseconds>(ctx.remaining()), cfg_.request_timeout);
    const auto cutoff = budget - std::max<milliseconds>(budget / 10, milliseconds(1));
    auto r = conn->run(stmts_.acquire,
                       {req.key, req.token, req.metadata, std::to_string(req.ttl.count()),
                        std::to_string(std::max<long long>(0, cutoff.count())),
                        std::to_string(listening ? kWaitMarker.count() : 0)},
                       ctx, req.key, "acquire");
    // No row: the holder committed after our statement's snapshot (its TTL unknown, and
    // nothing marked for us). Not heard: a release will not notify us (it came while we
    // marked). A waiter then tries again at once.
    if (r.rows() == 0) return listening ? Attempt::lost(milliseconds(0)) : Attempt::lost();
    if (!r.boolean(0, 0)) {
      return Attempt::lost(milliseconds(r.boolean(0, 2) ? r.integer(0, 1) : 0));
    }
    return Attempt::won(std::make_unique<PgGrant>(listener_, req.key, req.token),
                        static_cast<std::uint64_t>(r.integer(0, 1)));
  }

  // Frees `key` if `token` holds it (and wakes its waiters). Throws `Error`.
  bool release_token(const Context& ctx, const std::string& key, const std::string& token) {
    auto conn = pool_.get(ctx, key, "release");
    auto r = conn->run(stmts_.release, {key, token, channel(key)}, ctx, key, "release");
    return r.rows() == 1;
  }

  std::string channel(const std::string& key) const { return channel_name(oid_, key); }
  Listener& listener() { return *listener_; }
  milliseconds request_timeout() const { return cfg_.request_timeout; }

 private:
  Result read_shape(Connection& conn, const Context& ctx) {
    return conn.run(stmts_.shape, {stmts_.table, stmts_.sequence}, ctx, "", "check table");
  }

  // A holder from columns mode, fencing, remaining ms, metadata starting at `col`.
  static Holder holder(const Result& r, int row, int col) {
    Holder h;
    h.mode = LockMode::exclusive();  // The only mode this store grants.
    h.fencing_token = static_cast<std::uint64_t>(r.integer(row, col + 1));
    h.ttl_remaining = milliseconds(r.integer(row, col + 2));
    h.metadata = r.text(row, col + 3);
    return h;
  }

  const PostgresConfig cfg_;
  const Statements stmts_;
  Pool pool_;
  std::uint32_t oid_ = 0;
  bool durable_ = true;
  std::shared_ptr<Listener> listener_;
  std::atomic<bool> closed_{false};
};

// One acquisition. A waiting one listens on its lock's channel before it retries, so no
// release after that retry goes unheard.
class PgSession final : public AcquireSession {
 public:
  PgSession(std::shared_ptr<PgBackend> b, const AcquireRequest& r)
      : b_(std::move(b)), req_(r), channel_(b_->channel(r.key)) {}
  ~PgSession() override {
    if (ch_) b_->listener().leave(ch_);
  }

  Attempt attempt(const Context& ctx) override {
    Listener& l = b_->listener();
    // A channel kept listened from an earlier wait on this lock: even the first loss can wait.
    if (!ch_ && req_.waits) ch_ = l.try_join(channel_);
    if (ch_) seen_ = l.version(*ch_);
    maybe_granted_ = true;  // Until an answer says otherwise.
    sent_at_ = clock::now();
    Attempt a = b_->try_acquire(ctx, req_, ch_ && l.listening(*ch_));
    maybe_granted_ = false;
    return a;
  }

  bool wait(const Context& ctx, clock::time_point until) override {
    Listener& l = b_->listener();
    if (!ch_) {
      // First loss: LISTEN (bounded by the request timeout), then retry at once.
      ch_ = l.join(channel_);
      l.wait_listening(*ch_, std::min(ctx.deadline(), clock::now() + b_->request_timeout()),
                       ctx.stop_token());
      return false;
    }
    return l.wait_change(*ch_, seen_, std::min(until, ctx.deadline()), ctx.stop_token());
  }

  void abandon() noexcept override {
    if (!maybe_granted_) return;
    maybe_granted_ = false;
    try {
      // The statement may still be running on the server (we stopped waiting for it): once
      // its statement_timeout has surely ended it, undo what it may have granted. Queued
      // first, so that it happens even if the release below fails.
      b_->listener().defer_release(sent_at_ + b_->request_timeout() + std::chrono::seconds(1),
                                   req_.key, req_.token, b_->channel(req_.key));
      // An attempt whose answer was lost may have won: undo it now (only if our token holds
      // it).
      b_->release_token(Context::with_timeout(kCleanupTimeout), req_.key, req_.token);
    } catch (...) {
      // Unreachable: the deferred undo, or at worst the TTL, frees it.
    }
  }

 private:
  std::shared_ptr<PgBackend> b_;
  AcquireRequest req_;
  const std::string channel_;
  std::shared_ptr<Listener::Channel> ch_;
  std::uint64_t seen_ = 0;
  bool maybe_granted_ = false;
  clock::time_point sent_at_{};
};

std::unique_ptr<AcquireSession> PgBackend::start_acquire(const AcquireRequest& req) {
  return std::make_unique<PgSession>(shared_from_this(), req);
}

}  // namespace

std::shared_ptr<Backend> make_postgres_backend(const PostgresConfig& config, const Context& ctx) {
  validate(config);
  auto b = std::make_shared<PgBackend>(config);
  b->open(ctx);
  return b;
}

}  // namespace dlock::detail::postgres

namespace dlock::detail {

void add_postgres_schemes(SchemeTable& table) {
  auto factory = [](const std::string& url, const Context& ctx) {
    return postgres::make_postgres_backend(postgres::parse_postgres_url(url), ctx);
  };
  table["postgres"] = factory;
  table["postgresql"] = factory;
}

}  // namespace dlock::detail

namespace dlock {

Store open(const PostgresConfig& config, const Context& ctx) {
  auto backend = detail::postgres::make_postgres_backend(config, ctx);
  return detail::make_store(std::move(backend), detail::postgres::redacted_url(config));
}

}  // namespace dlock
