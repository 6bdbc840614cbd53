// Runs every conformance test (conformance_test.cpp, modes_test.cpp) on every store kind.
#include "conformance/fixture.hpp"

namespace dlock::test {

INSTANTIATE_TEST_SUITE_P(Stores, Conformance, ::testing::ValuesIn(kind_names()),
                         [](const auto& info) { return info.param; });

}  // namespace dlock::test
