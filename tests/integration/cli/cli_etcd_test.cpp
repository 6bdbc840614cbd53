// End-to-end tests of the `dlock` binary against a real etcd member: `run --shared` and
// `run --limit N` across processes (the read-write lock and the semaphore of etcd://).
#include <filesystem>
#include <fstream>

#include "cli_fixture.hpp"
#include "etcd/etcd_server.hpp"

namespace {

using namespace std::chrono_literals;
using dlock::test::Child;
using dlock::test::Cli;
using dlock::test::EtcdCluster;
using dlock::test::have_program;

class CliEtcd : public Cli {
 protected:
  void SetUp() override {
    Cli::SetUp();
    if (!have_program("etcd")) GTEST_SKIP() << "etcd not installed";
    etcd_ = std::make_unique<EtcdCluster>();
    url_ = "etcd://" + etcd_->endpoints() + "/?prefix=cli/";
  }
  // `dlock run ARGS NAME -- sh -c ...`: the command creates `mine`, waits up to 20 s for
  // `other`, then for the test's `go` file; it exits 0 only if it met the other command.
  Child meet(const std::vector<std::string>& args, const std::string& name, const std::string& mine,
             const std::string& other) {
    std::vector<std::string> argv = {"run", "--store", url_};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string wait_for_file =
        "i=0; while [ ! -e \"$1\" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; "
        "[ -e \"$1\" ]";
    const std::string script =
        "w() { " + wait_for_file + "; }; touch " + mine + " && w " + other + " && w " + path("go");
    argv.insert(argv.end(), {name, "--", "sh", "-c", script});
    return background(argv, name + "-" + std::filesystem::path(mine).filename().string() + ".log");
  }
  void go() { std::ofstream(path("go")).put('1'); }
  std::unique_ptr<EtcdCluster> etcd_;
  std::string url_;
};

TEST_F(CliEtcd, SharedRunsHoldTogetherAndAPlainRunIsRefusedMeanwhile) {
  const auto a = path("a"), b = path("b");
  auto first = meet({"--shared"}, "rw", a, b);
  auto second = meet({"--shared"}, "rw", b, a);
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(a) && std::filesystem::exists(b); }))
      << log("rw-a.log") << log("rw-b.log");
  // Both readers are inside their commands: a writer is refused at once.
  auto writer = dlock({"run", "--store", url_, "--no-wait", "rw", "--", "true"});
  EXPECT_EQ(writer.code, 75) << writer.err;
  go();
  EXPECT_EQ(code_of(first.wait(30s)), 0) << log("rw-a.log");
  EXPECT_EQ(code_of(second.wait(30s)), 0) << log("rw-b.log");
  auto after = dlock({"run", "--store", url_, "--no-wait", "rw", "--", "true"});
  EXPECT_EQ(after.code, 0) << after.err;
}

TEST_F(CliEtcd, LimitTwoRunsTwoCommandsAtOnceAndRefusesAThird) {
  const auto a = path("a"), b = path("b");
  auto first = meet({"--limit", "2"}, "sem", a, b);
  auto second = meet({"--limit", "2"}, "sem", b, a);
  ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(a) && std::filesystem::exists(b); }))
      << log("sem-a.log") << log("sem-b.log");
  auto third = dlock({"run", "--store", url_, "--limit", "2", "--no-wait", "sem", "--", "true"});
  EXPECT_EQ(third.code, 75) << third.err;
  auto other_limit =
      dlock({"run", "--store", url_, "--limit", "3", "--no-wait", "sem", "--", "true"});
  EXPECT_NE(other_limit.code, 0);  // Another limit for the same semaphore is refused.
  go();
  EXPECT_EQ(code_of(first.wait(30s)), 0) << log("sem-a.log");
  EXPECT_EQ(code_of(second.wait(30s)), 0) << log("sem-b.log");
}

}  // namespace
