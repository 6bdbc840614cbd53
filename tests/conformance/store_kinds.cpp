#include "conformance/store_kinds.hpp"

#include <map>
#include <mutex>
#include <stdexcept>

namespace dlock::test {

std::vector<StoreKind>& store_kinds() {
  static std::vector<StoreKind> kinds;
  return kinds;
}

StoreEnv& store_env(const std::string& name) {
  static std::mutex mu;
  // A static map is destroyed at exit, which stops the servers.
  static std::map<std::string, std::unique_ptr<StoreEnv>> envs;
  std::lock_guard lk(mu);
  auto it = envs.find(name);
  if (it != envs.end()) return *it->second;
  for (auto& k : store_kinds()) {
    if (k.name == name) return *envs.emplace(name, k.start()).first->second;
  }
  throw std::runtime_error("unknown store kind " + name);
}

}  // namespace dlock::test
