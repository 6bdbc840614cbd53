#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan+UBSan, in their own build directory)
# and runs each for a bounded time on a scratch copy of its seed corpus (fuzz/corpus/<target>;
# new inputs stay in the scratch copy). Exits non-zero when a target crashes, leaks, hits
# undefined behaviour or breaks one of its checks; the input that did it is kept in
# $FUZZ_BUILD_DIR/artifacts/.
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_TARGETS (space-separated names,
# default all: resp url metadata lock_state), FUZZ_BUILD_DIR (default build/fuzz), JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build/fuzz}
targets=${FUZZ_TARGETS:-resp url metadata lock_state}
JOBS=${JOBS:-$(nproc)}

# Only the file and Redis stores have parsers to fuzz here; etcd's wire is protobuf (gRPC).
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDLOCK_BUILD_FUZZERS=ON -DDLOCK_SANITIZE=address -DDLOCK_WERROR=ON -DDLOCK_WITH_ETCD=OFF \
  -DDLOCK_BUILD_TESTS=OFF -DDLOCK_BUILD_TOOLS=OFF -DDLOCK_BUILD_EXAMPLES=OFF \
  -DDLOCK_BUILD_BENCH=OFF >/dev/null
names=()
for t in $targets; do names+=("fuzz_$t"); done
cmake --build "$build" -j"$JOBS" --target "${names[@]}"

mkdir -p "$build/artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in $targets; do
  mkdir -p "$scratch/$t"
  cp fuzz/corpus/"$t"/* "$scratch/$t/"
  echo "fuzz: $t for ${seconds}s"
  # -rss_limit_mb: a reply that makes the parser allocate gigabytes is a finding too.
  if "$build/fuzz/fuzz_$t" "$scratch/$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -max_len=8192 -timeout=10 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    >"$scratch/$t.log" 2>&1; then
    grep -E "^(Done |stat::peak_rss_mb)|#[0-9]+.*DONE" "$scratch/$t.log" | sed "s/^/fuzz: $t: /"
  else
    tail -n 60 "$scratch/$t.log"
    echo "fuzz: $t FAILED (artifact in $build/artifacts/)"
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a finding"
