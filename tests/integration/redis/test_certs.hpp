// Test helper: a throwaway CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, made with the `openssl` command line tool.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace dlock::test {

struct TestCerts {
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key;

  /// Creates the files in `dir` (prefix `tag` lets one dir hold two unrelated CAs).
  explicit TestCerts(const std::filesystem::path& dir, const std::string& tag = "t") {
    auto p = [&](const std::string& n) { return dir / (tag + "-" + n); };
    ca = p("ca.crt");
    server_cert = p("server.crt");
    server_key = p("server.key");
    client_cert = p("client.crt");
    client_key = p("client.key");
    std::ofstream(p("ext.cnf")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const std::string log = p("openssl.log").string();
    const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                      "-nodes"};
    auto req = [&](std::vector<std::string> args) {
      std::vector<std::string> argv{"openssl", "req"};
      argv.insert(argv.end(), ec.begin(), ec.end());
      argv.insert(argv.end(), args.begin(), args.end());
      run(argv, log);
    };
    req({"-x509", "-days", "2", "-subj", "/CN=dlock test CA", "-keyout", p("ca.key").string(),
         "-out", ca.string()});
    for (auto [name, crt, key] : {std::tuple{"server", server_cert, server_key},
                                  std::tuple{"client", client_cert, client_key}}) {
      const std::string csr = p(std::string(name) + ".csr").string();
      req({"-subj", std::string("/CN=") + name, "-keyout", key.string(), "-out", csr});
      run({"openssl", "x509", "-req", "-days", "2", "-in", csr, "-CA", ca.string(), "-CAkey",
           p("ca.key").string(), "-CAcreateserial", "-out", crt.string(), "-extfile",
           p("ext.cnf").string()},
          log);
    }
  }

 private:
  static void run(const std::vector<std::string>& argv, const std::string& log) {
    Child c(argv, log);
    if (c.wait(std::chrono::seconds(30)) != 0) {
      throw std::runtime_error("openssl failed: " + read_file(log));
    }
  }
};

/// redis-server TLS arguments for `certs` (client certificates optional unless `require`).
inline std::vector<std::string> redis_tls_args(const TestCerts& certs, bool require = false) {
  return {"--tls-cert-file",         certs.server_cert.string(),  "--tls-key-file",
          certs.server_key.string(), "--tls-ca-cert-file",        certs.ca.string(),
          "--tls-auth-clients",      require ? "yes" : "optional"};
}

}  // namespace dlock::test
