#!/usr/bin/env bash
# Installs everything dlock needs to build and test, from Debian 12 packages only.
# Usage: scripts/setup.sh [--build-only]   (--build-only skips the store servers)
# dpkg-dev (dpkg-shlibdeps) and file are what `cpack -G DEB` needs (scripts/package_check.sh).
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang-format libhiredis-dev libasio-dev libssl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libgtest-dev libgmock-dev
  libbenchmark-dev libcli11-dev nlohmann-json3-dev clang libclang-rt-14-dev man-db groff-base libpq-dev
  libzookeeper-mt-dev dpkg-dev file)
SERVER_PKGS=(redis-server redis-tools etcd-server etcd-client python3-redis openssl procps
  iproute2 postgresql zookeeper python3-kazoo)

pkgs=("${BUILD_PKGS[@]}")
[[ "${1:-}" == "--build-only" ]] || pkgs+=("${SERVER_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts these services on install; dlock's tests start their own on free ports.
for svc in redis-server etcd postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    ${SUDO:-} systemctl stop "$svc" || true
  fi
done
echo "setup: ok"
