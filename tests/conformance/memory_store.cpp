// memory:// in the conformance suite: every URL names one shared in-process store.
#include "conformance/store_kinds.hpp"

namespace {
class MemoryEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return "memory://conformance"; }
  bool cross_process() override { return false; }
};
}  // namespace

DLOCK_CONFORMANCE_STORE(memory, [] { return std::make_unique<MemoryEnv>(); });
