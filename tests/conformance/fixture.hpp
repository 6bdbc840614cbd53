// The fixture of the conformance suite: a store of the kind under test, a fresh prefix per
// test, and the check that no test leaves a lock behind.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "conformance/store_kinds.hpp"
#include "dlock/dlock.hpp"

namespace dlock::test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

inline std::vector<std::string> kind_names() {
  std::vector<std::string> out;
  for (auto& k : store_kinds()) out.push_back(k.name);
  return out;
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    url_ = store_env(GetParam()).url();
    store_ = open(url_);
    caps_ = store_.capabilities();
    // Short TTLs for expiry tests, respecting the store's minimum.
    short_ttl_ = std::max<std::chrono::milliseconds>(caps_.min_ttl, 400ms);
    static std::atomic<int> seq{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("conf-") + std::to_string(::getpid()) + "-" + std::to_string(seq++) +
              "-" + info->name();
    for (auto& c : prefix_) {
      if (c == '/') c = '_';
    }
  }
  void TearDown() override {
    store_.close();
    // Nothing leaks: every test's locks are released (or expired) by the time it ends.
    auto left = open(url_).list(Context::with_timeout(10s), prefix_);
    for (auto& l : left) ADD_FAILURE() << "stray lock left in the store: " << l.key;
  }

  std::string key(const std::string& name = "k") { return prefix_ + "-" + name; }
  Store another() { return open(url_); }

  std::string url_;
  Store store_;
  Capabilities caps_;
  std::chrono::milliseconds short_ttl_{};
  std::string prefix_;
};

}  // namespace dlock::test
