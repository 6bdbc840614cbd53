#include "file/file_backend.hpp"

#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>

#include "core/schemes.hpp"
#include "core/store_core.hpp"
#include "core/url.hpp"
#include "file/alive_slots.hpp"
#include "file/dir_watch.hpp"
#include "file/file_error.hpp"
#include "file/lock_files.hpp"
#include "file/store_dir.hpp"

namespace dlock {
namespace detail {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

milliseconds remaining_ms(std::int64_t deadline_ns, std::int64_t now_ns) {
  return milliseconds((deadline_ns - now_ns + 999'999) / 1'000'000);
}

struct Shared {
  std::filesystem::path dir;
  bool sync = true;
  AliveSlots alive;

  Shared(std::filesystem::path d, bool s) : dir(std::move(d)), sync(s), alive(dir) {}
  /// The directory's watch, started by the first acquisition (status, list and release
  /// never wait, so they cost no inotify instance or thread). Throws `Error(unavailable)`.
  DirWatch& watch() {
    std::call_once(watch_once_, [this] { watch_ = std::make_unique<DirWatch>(dir); });
    return *watch_;
  }
  LockFiles files(const std::string& key) const { return LockFiles(dir, key, sync); }
  /// Whether `st` names a holder that is unexpired and whose process still holds its slot.
  bool held(const LockState& st, std::int64_t now_ns, const std::string& key) const {
    return st.unexpired(now_ns) && alive.alive(st.slot, key);
  }

 private:
  std::once_flag watch_once_;  // A throwing start leaves it unset: the next call retries.
  std::unique_ptr<DirWatch> watch_;
};

// One grant: the key and the token that the state file names while we hold it.
struct FileGrant final : GrantState {
  FileGrant(std::string k, std::string t) : key(std::move(k)), token(std::move(t)) {}
  const std::string key, token;
};

Backend::Holder holder_of(const LockState& st, std::int64_t now_ns) {
  return {LockMode::exclusive(), st.fencing, remaining_ms(st.deadline_ns, now_ns), st.metadata};
}

class FileSession final : public AcquireSession {
 public:
  FileSession(std::shared_ptr<Shared> s, const AcquireRequest& r)
      : s_(std::move(s)),
        watch_(s_->watch()),
        req_(r),
        files_(s_->files(req_.key)),
        stem_(file_stem(req_.key)) {}

  Attempt attempt(const Context& ctx) override {
    seen_ = watch_.version(stem_);  // Before reading: a later change bumps it.
    // A look without the guard first (the record is replaced atomically): when many wait,
    // only those who see the lock free contend for the guard.
    if (auto busy = still_held(files_.read())) return std::move(*busy);
    auto guard = files_.lock_guard(ctx);
    LockState st = files_.read();
    if (auto busy = still_held(st)) return std::move(*busy);
    LockState mine;
    mine.fencing = st.fencing + 1;
    mine.token = req_.token;
    mine.slot = s_->alive.claim(req_.key);
    mine.boot_id = current_boot_id();
    mine.deadline_ns = monotonic_ns() + std::chrono::nanoseconds(req_.ttl).count();
    mine.metadata = req_.metadata;
    try {
      files_.write(mine);
    } catch (...) {
      s_->alive.unclaim(mine.slot);  // Nothing was granted.
      throw;
    }
    s_->alive.keep(req_.token, mine.slot);
    return Attempt::won(std::make_unique<FileGrant>(req_.key, req_.token), mine.fencing);
  }

  // The loss to report when `st` names a live holder; nullopt when the lock is free.
  std::optional<Attempt> still_held(const LockState& st) {
    const auto now = monotonic_ns();
    if (!s_->held(st, now, req_.key)) return std::nullopt;
    auto left = remaining_ms(st.deadline_ns, now);
    holder_expires_ = steady::now() + left;
    return Attempt::lost(left);
  }

  bool wait(const Context& ctx, steady::time_point until) override {
    // The holder's expiry announces itself to nobody: wake for it too.
    return watch_.wait_change(stem_, seen_, ctx, std::min(until, holder_expires_));
  }

  // An attempt either writes the record or throws before granting: nothing to undo.
  void abandon() noexcept override {}

 private:
  std::shared_ptr<Shared> s_;
  DirWatch& watch_;
  AcquireRequest req_;
  LockFiles files_;
  std::string stem_;
  std::uint64_t seen_ = 0;
  steady::time_point holder_expires_ = steady::time_point::max();
};

class FileBackend final : public Backend {
 public:
  explicit FileBackend(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  ~FileBackend() override { s_->alive.drop_all(); }

  std::string_view scheme() const override { return "file"; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.notifies = true;
    c.frees_on_crash = true;
    c.durable = true;
    c.binary_keys = true;
    c.max_key_bytes = kFileMaxKeyBytes;
    c.min_ttl = milliseconds(1);
    return c;
  }

  std::unique_ptr<AcquireSession> start_acquire(const AcquireRequest& req) override {
    return std::make_unique<FileSession>(s_, req);
  }

  GrantResult release(const Context& ctx, GrantState& grant) noexcept override {
    auto& g = static_cast<FileGrant&>(grant);
    auto r = guarded([&] {
      auto files = s_->files(g.key);
      auto guard = files.lock_guard(ctx);
      LockState st = files.read();
      if (st.token != g.token || !st.unexpired(monotonic_ns())) return GrantResult::not_held();
      st.clear();
      files.write(st);
      return GrantResult::held();
    });
    s_->alive.drop(g.token);
    return r;
  }

  GrantResult extend(const Context& ctx, GrantState& grant, milliseconds ttl) noexcept override {
    auto& g = static_cast<FileGrant&>(grant);
    return guarded([&] {
      auto files = s_->files(g.key);
      auto guard = files.lock_guard(ctx);
      LockState st = files.read();
      const auto now = monotonic_ns();
      if (st.token != g.token || !st.unexpired(now)) {
        s_->alive.drop(g.token);  // Lost: stop claiming to be alive.
        return GrantResult::not_held();
      }
      st.deadline_ns = now + std::chrono::nanoseconds(ttl).count();
      files.write(st);
      return GrantResult::held();
    });
  }

  Inspection inspect(const Context&, const std::string& key) override {
    // No guard: the record is replaced atomically, so a plain read sees a whole one.
    return inspect_files(s_->files(key), *s_);
  }

  std::vector<Inspection> list(const Context& ctx, const std::string& prefix) override {
    std::vector<Inspection> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(s_->dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto key = key_of_state_file(it->path().filename().string());
      if (!key || key->compare(0, prefix.size(), prefix) != 0) continue;
      if (ctx.done()) throw Error(errc::timeout, "file", prefix, "list");
      try {
        auto r = inspect_files(s_->files(*key), *s_);
        if (!r.holders.empty()) out.push_back(std::move(r));
      } catch (const Error&) {
        // One unreadable record must not hide the others.
      }
    }
    if (ec) throw_file_error(ec.value(), prefix, "list", "cannot scan " + s_->dir.string());
    return out;
  }

  bool force_release(const Context& ctx, const std::string& key) override {
    auto files = s_->files(key);
    auto guard = files.lock_guard(ctx);
    LockState st = files.read();
    if (!s_->held(st, monotonic_ns(), key)) return false;
    st.clear();
    files.write(st);
    return true;
  }

  void close() noexcept override { s_->alive.drop_all(); }

 private:
  static Inspection inspect_files(const LockFiles& files, const Shared& s) {
    Inspection r;
    r.key = files.key();
    LockState st = files.read();
    const auto now = monotonic_ns();
    if (s.held(st, now, files.key())) r.holders.push_back(holder_of(st, now));
    return r;
  }

  std::shared_ptr<Shared> s_;
};

}  // namespace

std::shared_ptr<Backend> make_file_backend(const FileConfig& config) {
  auto dir = config.dir.empty() ? default_file_store_dir() : config.dir;
  if (!dir.is_absolute()) {
    throw Error(errc::invalid_argument, "file", "", "open",
                "the store directory must be an absolute path: " + dir.string());
  }
  prepare_store_dir(dir);
  return std::make_shared<FileBackend>(std::make_shared<Shared>(dir, config.sync));
}

void add_file_schemes(SchemeTable& table) {
  table["file"] = [](const std::string& url, const Context&) {
    auto u = parse_url(url, 0);
    check_query_keys(u, {"sync"});
    if (!u.authority.empty() && u.authority != "localhost") {
      throw Error(errc::invalid_argument, "file", "", "parse url",
                  "file:// takes a local directory (file:///dir), not a host");
    }
    FileConfig config;
    if (!u.path.empty() && u.path != "/") config.dir = u.path;
    config.sync = query_bool(u, "sync", true);
    return make_file_backend(config);
  };
}

}  // namespace detail

Store open(const FileConfig& config) {
  auto dir = config.dir.empty() ? default_file_store_dir() : config.dir;
  auto backend = detail::make_file_backend(config);
  std::string url = "file://" + dir.string();
  if (!config.sync) url += "?sync=false";
  return detail::make_store(std::move(backend), std::move(url));
}

}  // namespace dlock
