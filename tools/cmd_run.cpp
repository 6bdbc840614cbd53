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
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "cli_common.hpp"

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
                                           std::uint64_t fencing) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with("DLOCK_NAME=") || v.starts_with("DLOCK_STORE=") ||
        v.starts_with("DLOCK_FENCING_TOKEN=")) {
      continue;
    }
    env.emplace_back(v);
  }
  env.push_back("DLOCK_NAME=" + a.name);
  env.push_back("DLOCK_STORE=" + url);
  env.push_back("DLOCK_FENCING_TOKEN=" + std::to_string(fencing));
  return env;
}

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
    std::string s = " (held by pid " + std::to_string(i.owner.pid);
    if (!i.owner.host.empty()) s += " on " + i.owner.host;
    if (!i.owner.text.empty()) s += ": " + i.owner.text;
    return s + ", " + human_duration(i.ttl_remaining) + " left)";
  } catch (const Error&) {
    return "";
  }
}

int run_locked(const RunArgs& a) {
  if (a.command.empty()) {
    std::fprintf(stderr, "dlock run: no command given: dlock run NAME -- CMD [ARGS...]\n");
    return kUsage;
  }
  if (a.no_wait && !a.wait.empty()) {
    std::fprintf(stderr, "dlock run: --wait and --no-wait exclude each other\n");
    return kUsage;
  }
  LockOptions opts;
  opts.ttl = parse_duration_arg(a.ttl, "--ttl");
  const milliseconds kill_after = parse_duration_arg(a.kill_after, "--kill-after");
  if (a.no_wait) {
    opts.wait = WaitPolicy::none();
  } else if (!a.wait.empty()) {
    opts.wait = WaitPolicy::up_to(parse_duration_arg(a.wait, "--wait"));
  }
  opts.auto_renew = true;
  opts.metadata = a.metadata.empty() ? "dlock run " + a.command[0] : a.metadata;

  // Block the handled signals before the store starts any thread, so that every thread
  // inherits the mask and they all arrive at the signalfd.
  const sigset_t handled = handled_signals();
  ::pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  Fd sig(::signalfd(-1, &handled, SFD_CLOEXEC));
  Fd acquired(::eventfd(0, EFD_CLOEXEC));
  auto lost_fd = std::make_shared<Fd>(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (sig.fd < 0 || acquired.fd < 0 || lost_fd->fd < 0) {
    std::fprintf(stderr, "dlock run: %s\n", std::strerror(errno));
    return kSoftware;
  }
  opts.on_lost = [lost_fd](const LossInfo&) { notify(lost_fd->fd); };

  const std::string url = resolve_store_url(a.store);
  Store store = open_store(url);

  // Acquire on a helper thread so that SIGINT/SIGTERM can cancel the wait.
  std::stop_source stop;
  std::optional<Lease> lease;
  std::exception_ptr failure;
  std::thread acquirer([&] {
    try {
      lease = store.acquire(Context::with_stop(stop.get_token()), a.name, opts);
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
        stop.request_stop();
      }
    }
  }
  acquirer.join();
  if (interrupted != 0) return 128 + interrupted;  // The lease (if any) is released here.
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const Error& e) {
      if (e.code() == errc::timeout) {
        std::fprintf(stderr, "dlock run: lock \"%s\" not acquired %s%s\n", a.name.c_str(),
                     a.no_wait ? "(--no-wait)" : ("within " + a.wait).c_str(),
                     holder_of(store, a.name).c_str());
        return kTempFail;
      }
      throw;
    }
  }
  if (!lease) {  // A no-wait miss.
    std::fprintf(stderr, "dlock run: lock \"%s\" not acquired (--no-wait)%s\n", a.name.c_str(),
                 holder_of(store, a.name).c_str());
    return kTempFail;
  }

  const pid_t pid = spawn(a.command, child_environment(a, url, lease->fencing_token()));
  if (pid < 0) {
    std::fprintf(stderr, "dlock run: cannot run %s: %s\n", a.command[0].c_str(),
                 std::strerror(-pid));
    lease->release();
    return -pid == ENOENT ? kNotFound : kCannotExec;
  }

  bool lost = false;
  std::optional<clock::time_point> kill_at;
  int wstatus = 0;
  for (bool exited = false; !exited;) {
    int timeout = -1;
    if (kill_at) {
      auto left = std::chrono::ceil<milliseconds>(*kill_at - clock::now()).count();
      timeout = static_cast<int>(std::max<long long>(0, left));
    }
    pollfd fds[2] = {{sig.fd, POLLIN, 0}, {lost_fd->fd, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0) continue;
    if (fds[1].revents != 0 && !lost) {
      std::uint64_t v;
      (void)!::read(lost_fd->fd, &v, sizeof v);
      lost = true;
      std::fprintf(stderr,
                   "dlock run: lock \"%s\" was lost; sending SIGTERM to %s (pid %d), SIGKILL "
                   "in %s\n",
                   a.name.c_str(), a.command[0].c_str(), pid, human_duration(kill_after).c_str());
      ::kill(pid, SIGTERM);
      kill_at = clock::now() + kill_after;
    }
    if (kill_at && clock::now() >= *kill_at) {
      std::fprintf(stderr, "dlock run: %s (pid %d) still running: SIGKILL\n", a.command[0].c_str(),
                   pid);
      ::kill(pid, SIGKILL);
      kill_at.reset();
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo si{};
      if (::read(sig.fd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo != SIGCHLD) {
        // Signals from the terminal already reached the command (same process group);
        // forward only those sent to us alone (kill, systemd, a supervisor).
        if (si.ssi_code != SI_KERNEL) ::kill(pid, static_cast<int>(si.ssi_signo));
        continue;
      }
    }
    if (::waitpid(pid, &wstatus, WNOHANG) == pid) exited = true;
  }
  if (lost) return kLockLost;
  auto r = lease->release();
  if (r.status == ReleaseStatus::not_held) {
    std::fprintf(stderr, "dlock run: warning: lock \"%s\" had expired when %s exited\n",
                 a.name.c_str(), a.command[0].c_str());
  }
  return status_of(wstatus);
}

}  // namespace

void add_run_command(CLI::App& app, RunArgs& args, int* exit_code) {
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
      "held, so CMD must not go on.\n\nExample: dlock run --wait 1m nightly-backup -- ./backup.sh "
      "--full\n\n"
      "Exit codes: CMD's own status, or 128+N when CMD was killed by signal N (also when dlock "
      "is interrupted while waiting); 64 usage error; 69 store unreachable or access refused; "
      "75 lock not acquired in time (--wait / --no-wait); 76 lock lost while CMD ran; 126 CMD "
      "could not be executed; 127 CMD not found.");
  run->add_option("--ttl", args.ttl,
                  "Lock time to live, renewed every TTL/3 while CMD runs (default 30s)")
      ->type_name("DURATION");
  auto* wait = run->add_option("--wait", args.wait,
                               "Wait at most this long for the lock (default: wait forever)")
                   ->type_name("DURATION");
  auto* no_wait = run->add_flag("--no-wait", args.no_wait, "Fail at once (exit 75) if held");
  wait->excludes(no_wait);
  run->add_option("--kill-after", args.kill_after,
                  "After losing the lock, SIGKILL CMD this long after SIGTERM (default 10s)")
      ->type_name("DURATION");
  run->add_option("--metadata", args.metadata,
                  "Free text stored with the lock, shown by status/list (default: the command)");
  run->add_option("--store", args.store,
                  "Store URL (default: $DLOCK_STORE, else the embedded file:// store)")
      ->type_name("URL");
  run->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  run->add_option("CMD", args.command, "The command and its arguments, after --")
      ->required()
      ->type_name("");
  run->callback([&args, exit_code] {
    try {
      *exit_code = run_locked(args);
    } catch (const Error& e) {
      *exit_code = report(e);
    }
  });
}

}  // namespace dlock::cli
