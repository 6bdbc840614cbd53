// file:// in the conformance suite: one private store directory for the whole run.
#include "dlock/build_config.hpp"

#if DLOCK_WITH_FILE
#include "conformance/store_kinds.hpp"
#include "support/process.hpp"

namespace {
class FileEnv : public dlock::test::StoreEnv {
 public:
  std::string url() override { return "file://" + dir_.path().string(); }

 private:
  dlock::test::TempDir dir_{"dlock-file-conf"};
};
}  // namespace

DLOCK_CONFORMANCE_STORE(file, [] { return std::make_unique<FileEnv>(); });
#endif
