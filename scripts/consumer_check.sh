#!/usr/bin/env bash
# Checks that other projects can use dlock: installs the build tree given as $1 into a
# temporary prefix and builds a consumer project outside the tree with find_package(dlock) and
# with pkg-config, then builds the same consumer with dlock as a subdirectory
# (add_subdirectory, from source: file and memory stores, so it stays quick), and runs both.
# When the build has the CLI, the installed man page and bash completion are checked too.
# Usage: consumer_check.sh [BUILD_DIR]      (default build/ci)
#        consumer_check.sh --prefix PREFIX  an existing install (e.g. unpacked .deb files,
#                                           <root>/usr): no install, no add_subdirectory build
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ "${1:-}" == "--prefix" ]]; then
  prefix=$(realpath "${2:?usage: consumer_check.sh --prefix PREFIX}")
  from_source=0
else
  build=${1:-build/ci}
  prefix="$tmp/prefix"
  cmake --install "$build" --prefix "$prefix" >/dev/null
  from_source=1
fi
# lib or lib/<multiarch>, whichever the install used.
libdir=$(dirname "$(find "$prefix" -name libdlock.so.0 -print -quit)")
[[ $libdir != . ]] || { echo "consumer: no libdlock.so.0 under $prefix"; exit 1; }

cmake -S tests/consumer -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
# find_package must have used this prefix, not another dlock on the machine.
dlock_dir=$(sed -n 's/^dlock_DIR:PATH=//p' "$tmp/build/CMakeCache.txt")
[[ $(realpath "$dlock_dir") == "$prefix"/* ]] ||
  { echo "consumer: find_package(dlock) used $dlock_dir, not $prefix"; exit 1; }
cmake --build "$tmp/build" >/dev/null
"$tmp/build/consumer"
# The same against the shared library (libdlock.so.0, only the public API exported).
cmake -S tests/consumer -B "$tmp/build-shared" -DCMAKE_PREFIX_PATH="$prefix" \
  -DDLOCK_TARGET=dlock::shared >/dev/null
cmake --build "$tmp/build-shared" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/build-shared/consumer"
# (ldd's output is captured first: grep -q stopping early would fail the pipe under pipefail.)
loaded=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/build-shared/consumer")
grep -q "=> $libdir/libdlock.so.0 " <<<"$loaded" ||
  { echo "consumer: the shared consumer does not load $libdir/libdlock.so.0"; exit 1; }
echo "consumer: linked libdlock.so.0"
# pkg-config: dlock.pc is relocatable, so its flags must point into this prefix.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
includedir=$(pkg-config --variable=includedir dlock)
[[ $(realpath -m "$includedir") == "$prefix/include" ]] ||
  { echo "consumer: dlock.pc's includedir is $includedir, not $prefix/include"; exit 1; }
# shellcheck disable=SC2046  # word splitting of the flags is wanted
c++ tests/consumer/main.cpp -o "$tmp/consumer-pc" $(pkg-config --cflags --libs dlock)
LD_LIBRARY_PATH="$libdir" "$tmp/consumer-pc" | sed 's/^consumer:/consumer (pkg-config):/'

if ((from_source)); then
  cmake -S tests/consumer/subdirectory -B "$tmp/subdir" -DDLOCK_SOURCE_DIR="$PWD" \
    -DDLOCK_WITH_REDIS=OFF -DDLOCK_WITH_ETCD=OFF >/dev/null
  cmake --build "$tmp/subdir" -j"${JOBS:-$(nproc)}" >/dev/null
  "$tmp/subdir/consumer" | sed 's/^consumer:/consumer (add_subdirectory):/'
fi

if [[ -x "$prefix/bin/dlock" ]]; then
  man_page="$prefix/share/man/man1/dlock.1"
  completion="$prefix/share/bash-completion/completions/dlock"
  [[ -f $man_page ]] || { echo "consumer: no man page at share/man/man1/dlock.1"; exit 1; }
  LC_ALL=C MANPAGER=cat man -l "$man_page" | grep -q "^NAME" ||
    { echo "consumer: the installed man page does not render"; exit 1; }
  [[ -f $completion ]] || { echo "consumer: no completion at $completion"; exit 1; }
  bash --norc -c "source '$completion' && complete -p dlock" >/dev/null ||
    { echo "consumer: the installed completion does not register"; exit 1; }
  echo "consumer: man page and bash completion installed"
fi
