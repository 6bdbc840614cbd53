// Test fixture: real etcd members (Debian's etcd 3.4) on free loopback ports in a temp dir.
// Header-only so that the conformance files and the integration tests share it.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace dlock::test {

/// One etcd cluster of `n` members (one by default), started by the constructor and killed
/// by the destructor. `extra` arguments are given to every member (e.g. TLS flags). With
/// `etcdctl_tls_flags` (e.g. "--cacert=... --cert=... --key=...") the client URLs are https.
class EtcdCluster {
 public:
  explicit EtcdCluster(int n = 1, std::vector<std::string> extra = {},
                       std::string etcdctl_tls_flags = {})
      : dir_("dlock-etcd"),
        extra_(std::move(extra)),
        tls_(!etcdctl_tls_flags.empty()),
        tls_flags_(std::move(etcdctl_tls_flags)) {
    std::string initial;
    for (int i = 0; i < n; ++i) {
      Member m;
      m.name = "m" + std::to_string(i);
      m.client_port = free_port();
      m.peer_port = free_port();
      initial += (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
      members_.push_back(std::move(m));
    }
    initial_ = initial;
    for (int i = 0; i < n; ++i) start(i);
    wait_healthy(std::chrono::seconds(20));
  }

  /// (Re)starts member `i` with its data dir.
  void start(int i) {
    auto& m = members_[i];
    auto scheme = tls_ ? std::string("https") : std::string("http");
    auto client = scheme + "://127.0.0.1:" + std::to_string(m.client_port);
    auto peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> argv = {"etcd",
                                     "--name=" + m.name,
                                     "--data-dir=" + (dir_.path() / m.name).string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=" + initial_,
                                     "--initial-cluster-state=new",
                                     "--initial-cluster-token=dlock-test"};
    for (auto& e : extra_) argv.push_back(e);
    m.child = Child(argv, (dir_.path() / (m.name + ".log")).string());
    if (!wait_for_port(m.client_port, std::chrono::seconds(10))) {
      throw std::runtime_error("etcd did not start: " + log(i));
    }
  }

  /// Waits until `etcdctl endpoint health` succeeds on every running member.
  void wait_healthy(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (etcdctl("endpoint health") == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("etcd not healthy: " + log(0));
  }

  /// Runs `etcdctl <args>` against the running members; returns its exit status.
  int etcdctl(const std::string& args, const std::string& env = {}) {
    std::string cmd = "ETCDCTL_API=3 " + env + " etcdctl --dial-timeout=2s --endpoints=" +
                      endpoints(tls_ ? "https://" : "") + " " + tls_flags_ + " " + args +
                      " >/dev/null 2>&1";
    return std::system(cmd.c_str());
  }

  /// What `etcdctl <args>` prints on stdout ("" on failure).
  std::string etcdctl_output(const std::string& args) {
    std::string cmd =
        "ETCDCTL_API=3 etcdctl --dial-timeout=2s --endpoints=" + endpoints(tls_ ? "https://" : "") +
        " " + tls_flags_ + " " + args + " 2>/dev/null";
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      ::pclose(f);
    }
    return out;
  }

  /// "127.0.0.1:p1,127.0.0.1:p2,..." (members that are running), each with `scheme` prepended.
  std::string endpoints(const std::string& scheme = {}) {
    std::string s;
    for (auto& m : members_) {
      if (!m.child.running()) continue;
      s += (s.empty() ? "" : ",") + scheme + "127.0.0.1:" + std::to_string(m.client_port);
    }
    return s;
  }
  /// Every member's endpoint, running or not.
  std::string all_endpoints() const {
    std::string s;
    for (auto& m : members_)
      s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(m.client_port);
    return s;
  }

  /// SIGKILLs member `i` and reaps it.
  void kill(int i) {
    members_[i].child.signal(9);
    members_[i].child.wait(std::chrono::seconds(5));
  }
  std::uint16_t client_port(int i) const { return members_[i].client_port; }
  int size() const { return static_cast<int>(members_.size()); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string log(int i) const { return read_file(dir_.path() / (members_[i].name + ".log")); }

 private:
  struct Member {
    std::string name;
    std::uint16_t client_port = 0, peer_port = 0;
    Child child;
  };
  TempDir dir_;
  std::vector<std::string> extra_;
  bool tls_;
  std::string initial_, tls_flags_;
  std::vector<Member> members_;
};

/// Certificates for TLS tests, made with the openssl CLI: a CA, and server and client
/// certificates signed by it (SAN IP:127.0.0.1 and DNS:localhost).
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;

  explicit TestPki(const std::filesystem::path& dir) {
    auto p = [&](const std::string& f) { return (dir / f).string(); };
    auto sh = [](const std::string& cmd) {
      if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
        throw std::runtime_error("failed: " + cmd);
      }
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dlock-test-ca -keyout " +
       p("ca.key") + " -out " + p("ca.pem"));
    {
      std::ofstream ext(p("san.ext"));
      ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
             "extendedKeyUsage=serverAuth,clientAuth\n";
    }
    for (std::string who : {"server", "client"}) {
      sh("openssl req -newkey rsa:2048 -nodes -subj /CN=" + who + " -keyout " + p(who + ".key") +
         " -out " + p(who + ".csr"));
      sh("openssl x509 -req -days 2 -in " + p(who + ".csr") + " -CA " + p("ca.pem") + " -CAkey " +
         p("ca.key") + " -CAcreateserial -extfile " + p("san.ext") + " -out " + p(who + ".pem"));
    }
    ca = p("ca.pem");
    server_cert = p("server.pem");
    server_key = p("server.key");
    client_cert = p("client.pem");
    client_key = p("client.key");
  }

  /// etcd flags for a TLS member that requires client certificates.
  std::vector<std::string> etcd_flags() const {
    return {"--cert-file=" + server_cert, "--key-file=" + server_key, "--trusted-ca-file=" + ca,
            "--client-cert-auth"};
  }
  /// etcdctl flags for the client certificate.
  std::string etcdctl_flags() const {
    return "--cacert=" + ca + " --cert=" + client_cert + " --key=" + client_key;
  }
  /// URL query for dlock.
  std::string query() const { return "ca=" + ca + "&cert=" + client_cert + "&key=" + client_key; }
};

}  // namespace dlock::test
