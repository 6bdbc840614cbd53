#!/usr/bin/env bash
# The main job: installs the build dependencies, builds dlock (Release) and runs `dlock demo`
# on the embedded file store (no server needed). Extra arguments go to `dlock demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-only
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DDLOCK_BUILD_TESTS=OFF \
  -DDLOCK_BUILD_BENCH=OFF -DDLOCK_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target dlock_cli
exec build/release/tools/dlock demo "$@"
