// Test helper: a throwaway PostgreSQL cluster (Debian's postgresql 15 binaries) made with
// initdb in a temporary directory and served on a free loopback port. When the tests run as
// root, the cluster belongs to the `postgres` user (or `nobody`) and runs as it (the server
// refuses to run as root). Lean on purpose: no fsync, small buffers, SCRAM passwords.
#pragma once

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace dlock::test {

/// The directory of the newest installed server binaries (/usr/lib/postgresql/<v>/bin).
inline std::filesystem::path postgres_bindir() {
  std::filesystem::path best;
  int best_version = -1;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = e.path() / "bin";
    int v = std::atoi(e.path().filename().c_str());
    if (std::filesystem::exists(bin / "postgres") && v > best_version) {
      best_version = v;
      best = bin;
    }
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL server under /usr/lib/postgresql");
  return best;
}

class PostgresServer {
 public:
  struct Options {
    /// PEM server certificate and key: the server also accepts TLS (ssl = on).
    std::filesystem::path tls_cert, tls_key;
    /// Extra postgresql.conf lines.
    std::vector<std::string> conf{};
  };

  /// The superuser that initdb creates, and its password.
  static constexpr const char* kAdmin = "dlock_admin";
  static constexpr const char* kAdminPassword = "admin-secret";

  PostgresServer() : PostgresServer(Options{}) {}
  explicit PostgresServer(Options opts) : opts_(std::move(opts)), port_(free_port()) {
    bindir_ = postgres_bindir();
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw) pw = ::getpwnam("nobody");
      if (!pw) throw std::runtime_error("no unprivileged user to run PostgreSQL as");
      run_as_ = pw->pw_name;
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      own(dir_.path());
    }
    init();
    start();
  }
  ~PostgresServer() { stop(); }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::uint16_t port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string log() const { return read_file(dir_.path() / "postgres.log"); }

  /// postgres://user:password@127.0.0.1:port/db[?query] (the superuser by default).
  std::string url(const std::string& query = "", const std::string& user = kAdmin,
                  const std::string& password = kAdminPassword,
                  const std::string& db = "postgres") const {
    return "postgres://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" +
           db + (query.empty() ? "" : "?" + query);
  }

  /// Runs SQL as the superuser through psql; throws with psql's output when it fails.
  void sql(const std::string& statements, const std::string& db = "postgres") const {
    const auto out = (dir_.path() / "psql.log").string();
    std::filesystem::remove(out);
    Child c({(bindir_ / "psql").string(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
             "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kAdmin +
                 " password=" + kAdminPassword + " dbname=" + db,
             "-c", statements},
            out);
    if (c.wait(std::chrono::seconds(60)) != 0) {
      throw std::runtime_error("psql failed: " + statements + "\n" + read_file(out));
    }
  }

  /// Starts the server on its port and waits until it accepts connections (after crash
  /// recovery, when it was killed).
  void start() {
    std::vector<std::string> argv;
    if (!run_as_.empty()) {
      argv = {"setpriv", "--reuid=" + run_as_, "--regid=" + std::to_string(gid_), "--clear-groups",
              "--"};
    }
    argv.insert(argv.end(), {(bindir_ / "postgres").string(), "-D", data().string()});
    child_ = Child(argv, (dir_.path() / "postgres.log").string());
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);;) {
      Child ready({(bindir_ / "pg_isready").string(), "-q", "-h", "127.0.0.1", "-p",
                   std::to_string(port_), "-t", "2"});
      if (ready.wait(std::chrono::seconds(10)) == 0) return;
      if (!child_.running() || std::chrono::steady_clock::now() > until) {
        throw std::runtime_error("postgres did not start: " + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  /// A clean fast shutdown (SIGINT), SIGKILL after 10 s.
  void stop() {
    if (child_.pid() <= 0) return;
    child_.signal(SIGINT);
    if (child_.wait(std::chrono::seconds(10)) == -1) kill();
  }

  /// A crash: SIGKILL to the server and every backend it started (they run in sessions of
  /// their own), then waits until all are gone so that `start()` can run crash recovery.
  void kill() {
    const pid_t master = child_.pid();
    if (master <= 0) return;
    std::vector<pid_t> children = children_of(master);
    child_.stop(std::chrono::milliseconds(0));
    for (pid_t p : children) ::kill(p, SIGKILL);
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < until;) {
      bool alive = false;
      for (pid_t p : children) alive = alive || running(p);
      if (!alive) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  /// Sends `sig` to the server process (SIGSTOP pauses new connections; backends go on).
  void signal(int sig) { child_.signal(sig); }

 private:
  std::filesystem::path data() const { return dir_.path() / "data"; }

  void own(const std::filesystem::path& p) const {
    if (!run_as_.empty() && ::chown(p.c_str(), uid_, gid_) != 0) {
      throw std::runtime_error("chown failed: " + p.string());
    }
  }

  void init() {
    const auto pwfile = dir_.path() / "pw";
    std::ofstream(pwfile) << kAdminPassword << "\n";
    own(pwfile);
    std::vector<std::string> argv;
    if (!run_as_.empty()) {
      argv = {"setpriv", "--reuid=" + run_as_, "--regid=" + std::to_string(gid_), "--clear-groups",
              "--"};
    }
    argv.insert(argv.end(), {(bindir_ / "initdb").string(), "-D", data().string(), "-U", kAdmin,
                             "--pwfile=" + pwfile.string(), "-A", "scram-sha-256", "-E", "UTF8",
                             "--locale=C", "--no-sync", "--no-instructions"});
    const auto log = (dir_.path() / "initdb.log").string();
    Child c(argv, log);
    if (c.wait(std::chrono::seconds(120)) != 0) {
      throw std::runtime_error("initdb failed: " + read_file(log));
    }
    std::ofstream conf(data() / "postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = '" << dir_.path().string() << "'\n"
         << "fsync = off\nfull_page_writes = off\nsynchronous_commit = on\n"
         << "shared_buffers = 16MB\nmax_connections = 200\nwal_level = minimal\n"
         << "max_wal_senders = 0\nlog_min_messages = warning\n"
         << "log_min_error_statement = panic\n";
    if (!opts_.tls_cert.empty()) {
      for (auto [from, to] :
           {std::pair{opts_.tls_cert, "server.crt"}, std::pair{opts_.tls_key, "server.key"}}) {
        std::filesystem::copy_file(from, data() / to,
                                   std::filesystem::copy_options::overwrite_existing);
        ::chmod((data() / to).c_str(), 0600);
        own(data() / to);
      }
      conf << "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
    }
    for (auto& line : opts_.conf) conf << line << "\n";
  }

  static std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    if (DIR* d = ::opendir("/proc")) {
      while (auto* e = ::readdir(d)) {
        const pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) {
          out.push_back(pid);
        }
      }
      ::closedir(d);
    }
    return out;
  }

  static bool running(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto close = line.rfind(')');
    return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
  }

  TempDir dir_{"dlock-postgres"};
  Options opts_;
  std::uint16_t port_;
  std::filesystem::path bindir_;
  std::string run_as_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  Child child_;
};

}  // namespace dlock::test
