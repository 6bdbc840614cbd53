#include "cmd_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "cli_common.hpp"
#include "metrics_file.hpp"

extern char** environ;

namespace dlock::cli {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Owns a file descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void notify(int fd) {
  std::uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

// The signals `dlock run` handles itself, through a signalfd.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&set, s);
  return set;
}

std::vector<std::string> child_environment(const RunArgs& a, const std::string& url,
                                           std::uint64_t fencing, const std::string& value) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with("DLOCK_NAME=") || v.starts_with("DLOCK_STORE=") ||
        v.starts_with("DLOCK_FENCING_TOKEN=") || v.starts_with("DLOCK_TERM=") ||
        v.starts_with("DLOCK_LEADER_VALUE=")) {
      continue;
    }
    env.emplace_back(v);
  }
  env.push_back("DLOCK_NAME=" + a.name);
  env.push_back("DLOCK_STORE=" + url);
  env.push_back("DLOCK_FENCING_TOKEN=" + std::to_string(fencing));
  if (a.elect) {
    env.push_back("DLOCK_TERM=" + std::to_string(fencing));
    env.push_back("DLOCK_LEADER_VALUE=" + value);
  }
  return env;
}

// Whether a termination signal (INT, TERM, HUP, QUIT) reached dlock: `elect --restart` then
// stops campaigning.
std::atomic<bool> g_terminated{false};

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Finds `name` as execvp would (a PATH search when it has no '/'). Empty + `err` if none.
std::string find_program(const std::string& name, int& err) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = (path != nullptr && path[0] != '\0') ? path : "/usr/local/bin:/usr/bin:/bin";
  err = ENOENT;
  std::size_t start = 0;
  for (;;) {
    auto end = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;
    }
    if (end == std::string::npos) return {};
    start = end + 1;
  }
}

// Starts the command with default signal handling and an empty signal mask, set to be
// killed if dlock dies (then its lock is gone: at once on the embedded store, so the
// command must not go on unprotected). Returns the pid, or -errno.
pid_t spawn(std::vector<std::string> argv, std::vector<std::string> env) {
  int err = 0;
  const std::string program = find_program(argv[0], err);
  if (program.empty()) return -err;
  auto cargv = c_strings(argv);
  auto cenv = c_strings(env);
  int report[2];  // The child writes exec's errno here; close-on-exec closes it on success.
  if (::pipe2(report, O_CLOEXEC) != 0) return -errno;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return -e;
  }
  if (pid == 0) {  // Only async-signal-safe calls from here on.
    ::close(report[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(kSoftware);  // dlock died before prctl.
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE}) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), cargv.data(), cenv.data());
    int e = errno;
    (void)!::write(report[1], &e, sizeof e);
    ::_exit(kNotFound);
  }
  ::close(report[1]);
  int e = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {
    ::waitpid(pid, nullptr, 0);
    return -e;
  }
  return pid;
}

int status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return kSoftware;
}

std::string holder_of(Store& store, const std::string& name) {
  try {
    auto i = store.inspect(Context::with_timeout(std::chrono::seconds(2)), name);
    if (!i.held) return "";
    std::string s = " (held by " + owner_text(i.owner);
    if (!i.owner.text.empty()) s += ": " + i.owner.text;
    return s + ", " + human_duration(i.ttl_remaining) + " left)";
  } catch (const Error&) {
    return "";
  }
}

const char* reason_sentence(LossReason r) {
  switch (r) {
    case LossReason::rejected:
      return "the store no longer has our grant";
    case LossReason::expired:
      return "renewal kept failing until the lock's validity ended";
    case LossReason::store_reported:
      return "the store ended our session or lease";
  }
  return "unknown reason";
}

// The loss callback runs on a dlock thread; the run loop reads what it saw.
struct LossSlot {
  std::mutex mutex;
  std::optional<LossInfo> info;
  Fd fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
};

// "wait forever", "wait up to 1m", "no wait".
std::string wait_text(const WaitPolicy& w) {
  switch (w.mode) {
    case WaitPolicy::Mode::no_wait:
      return "no wait";
    case WaitPolicy::Mode::up_to:
      return "wait up to " + human_duration(w.timeout);
    case WaitPolicy::Mode::forever:
      break;
  }
  return "wait forever";
}

std::int64_t ms_until(clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t - clock::now()).count();
}

// --wait / --no-wait: the command line decides when it names either; otherwise
// $DLOCK_WAIT / $DLOCK_NO_WAIT. Naming both in one place is a usage error.
WaitPolicy wait_policy(const RunArgs& a, std::string& shown) {
  const bool cli_wait = a.wait_option != nullptr && a.wait_option->count() > 0;
  const bool cli_no_wait = a.no_wait_option != nullptr && a.no_wait_option->count() > 0;
  std::string wait = a.wait;
  bool no_wait = a.no_wait;
  if (cli_wait && cli_no_wait) {
    throw Error(errc::invalid_argument, "cli", a.name, "options",
                "--wait and --no-wait exclude each other");
  }
  if (!cli_wait && !cli_no_wait) {
    wait = env_string("DLOCK_WAIT").value_or("");
    no_wait = env_bool("DLOCK_NO_WAIT").value_or(false);
    if (!wait.empty() && no_wait) {
      throw Error(errc::invalid_argument, "cli", a.name, "environment",
                  "DLOCK_WAIT and DLOCK_NO_WAIT exclude each other");
    }
  }
  if (no_wait) {
    shown = "(--no-wait)";
    return WaitPolicy::none();
  }
  if (!wait.empty()) {
    shown = "within " + wait;
    return WaitPolicy::up_to(parse_duration_arg(wait, "--wait"));
  }
  shown = "";
  return WaitPolicy::forever();
}

// Watches the renewals the library makes for the lease (through the store's counters, the
// only renewal signal the CLI has) and reports them: renewed (-v), failed or late (always).
class RenewalWatch {
 public:
  RenewalWatch(const Store& store, const Lease& lease, const LogFields& ids)
      : store_(store), lease_(lease), ids_(ids), seen_(store.metrics()) {}

  // How often to look: often enough to report a renewal within a tenth of the TTL.
  milliseconds interval() const {
    return std::clamp(lease_.ttl() / 10, milliseconds(20), milliseconds(250));
  }

  void check() {
    const Metrics now = store_.metrics();
    const std::int64_t valid_ms = ms_until(lease_.valid_until());
    if (now.renewals > seen_.renewals) {
      LogFields f = ids_;
      f.emplace_back("valid_for_ms", valid_ms);
      f.emplace_back("renewals", now.renewals);
      log_line(LogLevel::info, "renewed",
               "renewed lock " + quoted(lease_.key()) + " (valid for " +
                   human_duration(milliseconds(std::max<std::int64_t>(0, valid_ms))) + ")",
               f);
    }
    if (now.renewal_failures > seen_.renewal_failures) {
      LogFields f = ids_;
      f.emplace_back("valid_for_ms", valid_ms);
      f.emplace_back("renewal_failures", now.renewal_failures);
      log_line(LogLevel::warning, "renewal_failed",
               "renewing lock " + quoted(lease_.key()) + " failed (" +
                   std::to_string(now.renewal_failures) + " so far); still valid for " +
                   human_duration(milliseconds(std::max<std::int64_t>(0, valid_ms))) + ", retrying",
               f);
    }
    // The library's at-risk signal: a renewal failed, or the store reported its connection or
    // session interrupted, while the grant is still valid.
    const bool risk = lease_.at_risk();
    if (risk && !at_risk_) {
      LogFields f = ids_;
      f.emplace_back("valid_for_ms", valid_ms);
      log_line(LogLevel::warning, "at_risk",
               "lock " + quoted(lease_.key()) + " is at risk (the store could not confirm it); " +
                   "valid for " +
                   human_duration(milliseconds(std::max<std::int64_t>(0, valid_ms))) +
                   " more unless a renewal succeeds",
               f);
    } else if (!risk && at_risk_ && !lease_.lost()) {
      LogFields f = ids_;
      f.emplace_back("valid_for_ms", valid_ms);
      log_line(LogLevel::notice, "recovered",
               "lock " + quoted(lease_.key()) + " recovered (valid for " +
                   human_duration(milliseconds(std::max<std::int64_t>(0, valid_ms))) + ")",
               f);
    }
    at_risk_ = risk;
    seen_ = now;
  }

  /// Whether the lease was at risk at the last check.
  bool at_risk() const noexcept { return at_risk_; }

 private:
  static std::string quoted(const std::string& s) { return "\"" + s + "\""; }

  const Store& store_;
  const Lease& lease_;
  const LogFields& ids_;
  Metrics seen_;
  bool at_risk_ = false;
};

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(sig);
}

int run_locked(const RunArgs& a, const GlobalArgs& g) {
  if (a.command.empty()) {
    log_line(LogLevel::error, "usage", "no command given: dlock run NAME -- CMD [ARGS...]",
             {{"exit_code", std::int64_t{kUsage}}});
    return kUsage;
  }
  LockOptions opts;
  opts.ttl = parse_duration_arg(a.ttl, "--ttl");
  const milliseconds kill_after = parse_duration_arg(a.kill_after, "--kill-after");
  std::string wait_shown;
  opts.wait = wait_policy(a, wait_shown);
  opts.auto_renew = true;
  opts.metadata = a.metadata.empty() ? "dlock run " + a.command[0] : a.metadata;
  if (a.shared && a.limit > 0) {
    throw Error(errc::invalid_argument, "", a.name, "run",
                "--shared and --limit exclude each other");
  }
  if (a.shared) opts.mode = LockMode::shared();
  if (a.limit > 0) opts.mode = LockMode::permits(1, a.limit);

  // Block the handled signals before the store starts any thread, so that every thread
  // inherits the mask and they all arrive at the signalfd.
  const sigset_t handled = handled_signals();
  ::pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  Fd sig(::signalfd(-1, &handled, SFD_CLOEXEC));
  Fd acquired(::eventfd(0, EFD_CLOEXEC));
  auto loss = std::make_shared<LossSlot>();
  if (sig.fd < 0 || acquired.fd < 0 || loss->fd.fd < 0) {
    log_line(LogLevel::error, "error", std::strerror(errno));
    return kSoftware;
  }
  opts.on_lost = [loss](const LossInfo& info) {
    {
      std::lock_guard lock(loss->mutex);
      loss->info = info;
    }
    notify(loss->fd.fd);
  };

  const std::string url = resolve_store_url(g.store);
  Store store = open_store(url);
  // Destroyed after the lease (declared below), so the hold time is in the file.
  const MetricsFileAtExit metrics_at_exit(a.metrics_file, store, a.name);
  const LogFields ids = {{"key", a.name}, {"store", store.url()}};
  log_line(LogLevel::debug, "opened", "opened store " + store.url(), ids);
  {
    LogFields f = ids;
    f.emplace_back("ttl_ms", static_cast<std::int64_t>(opts.ttl.count()));
    f.emplace_back("wait", wait_text(opts.wait));
    log_line(LogLevel::info, "acquiring",
             "acquiring lock \"" + a.name + "\" on " + store.url() + " (ttl " +
                 human_duration(opts.ttl) + ", " + wait_text(opts.wait) + ")",
             f);
  }

  // Acquire on a helper thread so that SIGINT/SIGTERM can cancel the wait.
  std::stop_source stop;
  std::optional<Lease> lease;
  std::exception_ptr failure;
  const auto acquire_start = clock::now();
  std::thread acquirer([&] {
    try {
      if (a.elect) {
        Leadership lead =
            Election(store, a.name, opts).campaign(Context::with_stop(stop.get_token()), a.value);
        lease = std::move(lead.lease());
      } else {
        lease = store.acquire(Context::with_stop(stop.get_token()), a.name, opts);
      }
    } catch (...) {
      failure = std::current_exception();
    }
    notify(acquired.fd);
  });
  int interrupted = 0;
  for (bool done = false; !done;) {
    pollfd fds[2] = {{acquired.fd, POLLIN, 0}, {sig.fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents != 0) done = true;
    if (fds[1].revents != 0) {
      signalfd_siginfo si{};
      if (::read(sig.fd, &si, sizeof si) == sizeof si && si.ssi_signo != SIGCHLD) {
        interrupted = static_cast<int>(si.ssi_signo);
        g_terminated = true;
        stop.request_stop();
      }
    }
  }
  acquirer.join();
  const auto waited = std::chrono::duration_cast<milliseconds>(clock::now() - acquire_start);
  if (interrupted != 0) {  // The lease (if any) is released here.
    log_line(
        LogLevel::info, "interrupted",
        "interrupted by " + signal_name(interrupted) + " while acquiring lock \"" + a.name + "\"",
        {{"key", a.name}, {"signal", std::int64_t{interrupted}}});
    return 128 + interrupted;
  }
  auto not_acquired = [&] {
    LogFields f = ids;
    f.emplace_back("wait_ms", static_cast<std::int64_t>(waited.count()));
    f.emplace_back("exit_code", std::int64_t{kTempFail});
    log_line(LogLevel::error, "not_acquired",
             "lock \"" + a.name + "\" not acquired " + wait_shown + holder_of(store, a.name), f);
    return kTempFail;
  };
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const Error& e) {
      if (e.code() == errc::timeout) return not_acquired();
      throw;
    }
  }
  if (!lease) return not_acquired();  // A no-wait miss.
  const auto acquired_at = clock::now();
  {
    LogFields f = ids;
    f.emplace_back("fencing_token", lease->fencing_token());
    f.emplace_back("ttl_ms", static_cast<std::int64_t>(lease->ttl().count()));
    f.emplace_back("wait_ms", static_cast<std::int64_t>(waited.count()));
    f.emplace_back("valid_for_ms", ms_until(lease->valid_until()));
    f.emplace_back("attempts", store.metrics().acquire_attempts);
    log_line(LogLevel::info, "acquired",
             "acquired lock \"" + a.name + "\" (fencing token " +
                 std::to_string(lease->fencing_token()) + ", ttl " + human_duration(lease->ttl()) +
                 ", waited " + human_duration(waited) + ")",
             f);
  }

  const pid_t pid = spawn(a.command, child_environment(a, url, lease->fencing_token(), a.value));
  if (pid < 0) {
    const int code = -pid == ENOENT ? kNotFound : kCannotExec;
    log_line(LogLevel::error, "exec_failed",
             "cannot run " + a.command[0] + ": " + std::strerror(-pid),
             {{"program", a.command[0]}, {"exit_code", std::int64_t{code}}});
    lease->release();
    return code;
  }
  log_line(LogLevel::info, "started",
           "started " + a.command[0] + " (pid " + std::to_string(pid) + ")",
           {{"key", a.name}, {"program", a.command[0]}, {"child_pid", std::int64_t{pid}}});

  LogFields lease_ids = ids;
  lease_ids.emplace_back("fencing_token", lease->fencing_token());
  RenewalWatch renewals(store, *lease, lease_ids);
  bool lost = false, risk_stopped = false;
  // When to SIGKILL a command that ignored SIGTERM after a loss (max: not scheduled).
  clock::time_point kill_at = clock::time_point::max();
  int wstatus = 0;
  for (bool exited = false; !exited;) {
    auto timeout = renewals.interval().count();
    if (kill_at != clock::time_point::max()) {
      timeout = std::min<long long>(timeout, std::max<long long>(0, ms_until(kill_at)));
    }
    pollfd fds[2] = {{sig.fd, POLLIN, 0}, {loss->fd.fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(timeout));
    if (n < 0) continue;
    if (!lost) renewals.check();
    if (a.on_risk == "term" && renewals.at_risk() && !lost && !risk_stopped) {
      // --on-risk term: stop the command before the lock may be gone, not after.
      risk_stopped = true;
      log_line(LogLevel::warning, "stopping",
               "lock \"" + a.name + "\" is at risk (--on-risk term): sending SIGTERM to " +
                   a.command[0] + " (pid " + std::to_string(pid) + "), SIGKILL in " +
                   human_duration(kill_after),
               lease_ids);
      ::kill(pid, SIGTERM);
      kill_at = clock::now() + kill_after;
    }
    if (fds[1].revents != 0 && !lost) {
      std::uint64_t v;
      (void)!::read(loss->fd.fd, &v, sizeof v);
      lost = true;
      LossInfo info;
      {
        std::lock_guard lock(loss->mutex);
        if (loss->info) info = *loss->info;
      }
      LogFields f = lease_ids;
      f.emplace_back("reason", std::string(to_string(info.reason)));
      if (info.error) f.emplace_back("error", info.error.message());
      f.emplace_back("child_pid", std::int64_t{pid});
      f.emplace_back("kill_after_ms", static_cast<std::int64_t>(kill_after.count()));
      log_line(LogLevel::warning, "lost",
               "lock \"" + a.name + "\" was lost (" + reason_sentence(info.reason) +
                   (info.error ? ": " + info.error.message() : std::string()) +
                   "); sending SIGTERM to " + a.command[0] + " (pid " + std::to_string(pid) +
                   "), SIGKILL in " + human_duration(kill_after),
               f);
      ::kill(pid, SIGTERM);
      kill_at = clock::now() + kill_after;
    }
    if (clock::now() >= kill_at) {
      log_line(LogLevel::warning, "killed",
               a.command[0] + " (pid " + std::to_string(pid) + ") still running: SIGKILL",
               {{"key", a.name}, {"child_pid", std::int64_t{pid}}});
      ::kill(pid, SIGKILL);
      kill_at = clock::time_point::max();
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo si{};
      if (::read(sig.fd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo != SIGCHLD) {
        g_terminated = true;
        // Signals from the terminal already reached the command (same process group);
        // forward only those sent to us alone (kill, systemd, a supervisor).
        if (si.ssi_code != SI_KERNEL) {
          ::kill(pid, static_cast<int>(si.ssi_signo));
          log_line(LogLevel::info, "forwarded",
                   "forwarded " + signal_name(static_cast<int>(si.ssi_signo)) + " to " +
                       a.command[0] + " (pid " + std::to_string(pid) + ")",
                   {{"key", a.name}, {"signal", std::int64_t{si.ssi_signo}}});
        }
        continue;
      }
    }
    if (::waitpid(pid, &wstatus, WNOHANG) == pid) exited = true;
  }
  const int status = status_of(wstatus);
  log_line(LogLevel::info, "exited",
           a.command[0] + (WIFSIGNALED(wstatus) ? " was killed by " + signal_name(WTERMSIG(wstatus))
                                                : " exited with status " + std::to_string(status)),
           {{"key", a.name}, {"child_pid", std::int64_t{pid}}, {"status", std::int64_t{status}}});
  if (lost) return kLockLost;
  if (risk_stopped) {
    lease->release();
    return kLockLost;  // Stopped because the lock could not be vouched for.
  }
  const auto held_for = std::chrono::duration_cast<milliseconds>(clock::now() - acquired_at);
  auto r = lease->release();
  LogFields f = lease_ids;
  f.emplace_back("held_ms", static_cast<std::int64_t>(held_for.count()));
  switch (r.status) {
    case ReleaseStatus::released:
    case ReleaseStatus::already_released:
      log_line(LogLevel::info, "released",
               "released lock \"" + a.name + "\" (held " + human_duration(held_for) + ")", f);
      break;
    case ReleaseStatus::not_held:
      log_line(LogLevel::warning, "expired",
               "warning: lock \"" + a.name + "\" had expired when " + a.command[0] + " exited", f);
      break;
    case ReleaseStatus::failed:
      f.emplace_back("error", r.error.message());
      log_line(LogLevel::warning, "release_failed",
               "warning: releasing lock \"" + a.name + "\" failed (" + r.error.message() +
                   "); it expires by its TTL",
               f);
      break;
  }
  return status;
}

// The options `run` and `elect` share: TTL, waiting, killing, at-risk handling, metadata.
void add_lock_options(CLI::App* run, RunArgs& args) {
  with_env(run->add_option("--ttl", args.ttl,
                           "Lock time to live, renewed every TTL/3 while CMD runs (default 30s)"),
           "DLOCK_TTL")
      ->type_name("DURATION");
  // The pair is resolved by hand (wait_policy): the command line must beat the environment
  // across the two options, which CLI11's per-option environment cannot express.
  args.wait_option = run->add_option("--wait", args.wait,
                                     "Wait at most this long for the lock (default: wait forever)")
                         ->option_text("DURATION (Env:DLOCK_WAIT)");
  args.no_wait_option = run->add_flag("--no-wait", args.no_wait, "Fail at once (exit 75) if held")
                            ->option_text("(Env:DLOCK_NO_WAIT)");
  with_env(run->add_option("--kill-after", args.kill_after,
                           "After losing the lock, SIGKILL CMD this long after SIGTERM (default "
                           "10s)"),
           "DLOCK_KILL_AFTER")
      ->type_name("DURATION");
  with_env(run->add_option("--on-risk", args.on_risk,
                           "When the lock is at risk (a renewal failed or the store's connection "
                           "dropped, validity remaining): 'ignore' (default: log it and go on) or "
                           "'term' (SIGTERM CMD at once, SIGKILL after --kill-after, exit 76)")
               ->check(CLI::IsMember({"ignore", "term"})),
           "DLOCK_ON_RISK")
      ->type_name("ACTION");
  with_env(run->add_option("--metadata", args.metadata,
                           "Free text stored with the lock, shown by status/list (default: the "
                           "command)"),
           "DLOCK_METADATA")
      ->type_name("TEXT");
  with_env(run->add_option("--metrics-file", args.metrics_file,
                           "When dlock ends, write the store's metrics (wait and hold histograms, "
                           "counters) to PATH in node_exporter's textfile format"),
           "DLOCK_METRICS_FILE")
      ->type_name("PATH");
}

}  // namespace

void add_run_command(CLI::App& app, const GlobalArgs& global, RunArgs& args, int* exit_code) {
  auto* run = app.add_subcommand(
      "run",
      "Run CMD while holding lock NAME: acquire (waiting as asked), renew it while CMD runs, "
      "release it when CMD exits");
  run->footer(
      "CMD gets DLOCK_NAME, DLOCK_STORE and DLOCK_FENCING_TOKEN in its environment (pass the "
      "fencing token to the resource you protect so it can reject a stale holder). SIGINT, "
      "SIGTERM, SIGHUP and SIGQUIT sent to dlock are forwarded to CMD. If the lock is lost "
      "while CMD runs (renewal rejected, e.g. after `dlock release --force`, or impossible "
      "until the TTL ran out), CMD gets SIGTERM, then SIGKILL after --kill-after, and dlock "
      "exits 76. If dlock itself dies (kill -9), the kernel kills CMD too: the lock is no longer "
      "held, so CMD must not go on. With -v, dlock reports on stderr when it acquires, renews and "
      "releases the lock; --json (or --log-format json) writes those lines as JSON.\n\n"
      "Example: dlock run --wait 1m nightly-backup -- ./backup.sh --full\n\n" +
      std::string(kGlobalOptionsHelp) +
      "\n\nExit codes: CMD's own status, or 128+N when CMD was killed by signal N (also when "
      "dlock is interrupted while waiting); 64 usage error; 69 store unreachable or access "
      "refused; 75 lock not acquired in time (--wait / --no-wait); 76 lock lost while CMD ran; "
      "126 CMD could not be executed; 127 CMD not found.");
  add_lock_options(run, args);
  with_env(run->add_flag("--shared", args.shared,
                         "Take the read side of a read-write lock: several `run --shared` hold "
                         "NAME together, a plain `run` holds it alone"),
           "DLOCK_SHARED");
  with_env(run->add_option("--limit", args.limit,
                           "Take one of N permits of the semaphore NAME: at most N commands run "
                           "at once across every host (a distributed `sem`)"),
           "DLOCK_LIMIT")
      ->type_name("N")
      ->check(CLI::Range(1u, 1u << 30));
  run->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  run->add_option("CMD", args.command, "The command and its arguments, after --")
      ->required()
      ->type_name("");
  run->callback([&global, &args, exit_code] {
    try {
      start_command(global, "run");
      *exit_code = run_locked(args, global);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });
}

void add_elect_command(CLI::App& app, const GlobalArgs& global, RunArgs& args, int* exit_code) {
  auto* elect = app.add_subcommand(
      "elect",
      "Campaign in election NAME and run CMD only while leader; a standby waits and takes over");
  elect->footer(
      "dlock waits until it leads NAME (campaigns queue in arrival order on FIFO stores), "
      "publishes --value, and runs CMD with DLOCK_NAME, DLOCK_STORE, DLOCK_TERM and "
      "DLOCK_FENCING_TOKEN (the term: strictly increasing per election) and DLOCK_LEADER_VALUE. "
      "If the lead is lost while CMD runs, CMD gets SIGTERM, then SIGKILL after --kill-after, "
      "and dlock exits 76. A standby started the same way takes over within the TTL of a dead "
      "leader. With --restart, dlock campaigns again whenever CMD exits (a supervisor for "
      "singletons) until it gets SIGINT or SIGTERM.\n\n"
      "Example: dlock elect --value $(hostname):8080 --restart scheduler -- ./scheduler\n\n" +
      std::string(kGlobalOptionsHelp) +
      "\n\nExit codes: as `dlock run` (76 when the lead is lost while CMD runs).");
  add_lock_options(elect, args);
  with_env(elect->add_option("--value", args.value,
                             "The value to publish while leading, shown by `dlock leader` "
                             "(default: host:pid)"),
           "DLOCK_VALUE")
      ->type_name("TEXT");
  with_env(elect->add_flag("--restart", args.restart,
                           "Campaign again each time CMD exits, until dlock is signalled"),
           "DLOCK_RESTART");
  elect->add_option("NAME", args.name, "Election name")->required()->type_name("");
  elect->add_option("CMD", args.command, "The command and its arguments, after --")
      ->required()
      ->type_name("");
  elect->callback([&global, &args, exit_code] {
    try {
      start_command(global, "elect");
      args.elect = true;
      if (args.value.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        args.value = std::string(host) + ":" + std::to_string(::getpid());
      }
      do {
        *exit_code = run_locked(args, global);
      } while (args.restart && !g_terminated && *exit_code != kUsage);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });
}

}  // namespace dlock::cli
