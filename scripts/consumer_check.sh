#!/usr/bin/env bash
# Installs the build tree given as $1 into a temporary prefix and builds a consumer project
# outside the tree with find_package(dlock) and with pkg-config, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/ci}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S tests/consumer -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
"$tmp/build/consumer"
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig" \
  pkg-config --exists dlock && echo "consumer: pkg-config finds dlock"
