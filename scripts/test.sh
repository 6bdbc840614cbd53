#!/usr/bin/env bash
# The one test command: installs dependencies, builds with warnings as errors, runs every test,
# checks the install and the Debian packages (consumer_check.sh, package_check.sh), then the
# ASan+UBSan build (unit + conformance + integration), the fuzzers (scripts/fuzz.sh) and the
# TSan build of the core and the Redis store (unit + memory, file, redis and rediss conformance).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
export CTEST_OUTPUT_ON_FAILURE=1

scripts/setup.sh

step() { printf '\n==== %s ====\n' "$*"; }

step "format check"
scripts/format.sh --check

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLOCK_WERROR=ON >/dev/null
cmake --build build/ci -j"$JOBS"
step "tests"
ctest --test-dir build/ci -j"$JOBS" --timeout 900

step "consumer project (find_package after install)"
scripts/consumer_check.sh build/ci

step "Debian packages (CPack)"
scripts/package_check.sh build/ci

step "ASan+UBSan build"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DDLOCK_SANITIZE=address -DDLOCK_WERROR=ON \
  -DDLOCK_BUILD_BENCH=OFF -DDLOCK_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/asan -j"$JOBS"
step "ASan+UBSan tests"
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" ASAN_OPTIONS=detect_leaks=1 \
  ctest --test-dir build/asan -j"$JOBS" --timeout 900 -LE "bench|load|fault_extra"

step "fuzzers (libFuzzer, ASan+UBSan, ${FUZZ_SECONDS:-60}s per target)"
scripts/fuzz.sh

step "TSan build (core + Redis)"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DDLOCK_SANITIZE=thread -DDLOCK_WERROR=ON \
  -DDLOCK_WITH_REDIS=ON -DDLOCK_WITH_ETCD=OFF -DDLOCK_BUILD_BENCH=OFF \
  -DDLOCK_BUILD_EXAMPLES=OFF -DDLOCK_BUILD_TOOLS=OFF >/dev/null
cmake --build build/tsan -j"$JOBS" --target dlock_unit_tests dlock_conformance
step "TSan tests"
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" ctest --test-dir build/tsan -j"$JOBS" --timeout 900 \
  -R "^(conformance\.(memory|file|redis|rediss)$|Url|Duration|Token|Backoff|Validate|Metadata|Error|Open|Store|Scheduler|CoreTest|LocalQueue)"

step "all tests passed"
