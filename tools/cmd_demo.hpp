// `dlock demo`: worker processes contend for one lock and update a shared counter file with
// a deliberately non-atomic read-modify-write; the summary checks that no update was lost
// and that fencing tokens only grew.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace dlock::cli {

struct GlobalArgs;

struct DemoArgs {
  std::string name = "dlock-demo";
  int workers = 4;
  int iterations = 50;
  std::string ttl = "10s";
  // Hidden worker mode (the parent re-runs this binary as `dlock demo-worker ...`).
  std::string resource;
  std::string out;
};

/// Adds `demo` and the hidden `demo-worker` to `app`; each sets `*exit_code` when it runs.
void add_demo_commands(CLI::App& app, const GlobalArgs& global, DemoArgs& args, int* exit_code);

}  // namespace dlock::cli
