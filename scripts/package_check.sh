#!/usr/bin/env bash
# Builds the Debian packages of an already built tree with CPack (cmake/packaging.cmake) and
# checks them without installing anything on this machine: prints each package's control
# fields and contents, checks that the packages with ELF files got their Depends from
# dpkg-shlibdeps, unpacks all of them into a fresh root with `dpkg -x`, runs the unpacked
# `dlock demo` and builds the consumer project against the unpacked libdlock-dev.
# Usage: scripts/package_check.sh [BUILD_DIR]   (default build/ci; packages in BUILD_DIR/packages)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build/ci}")
out="$build/packages"
fail() { echo "package: $*" >&2; exit 1; }

rm -rf "$out"
(cd "$build" && cpack -G DEB >/dev/null)
mapfile -t debs < <(find "$out" -maxdepth 1 -name '*.deb' | sort)
((${#debs[@]})) || fail "cpack made no .deb in $out"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
declare -A by_name contents
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  by_name[$name]=$deb
  contents[$name]=$(dpkg-deb -c "$deb")
  printf '\n---- %s (%s bytes)\n' "$(basename "$deb")" "$(stat -c %s "$deb")"
  dpkg-deb -I "$deb"
  echo "${contents[$name]}"
  dpkg -x "$deb" "$root"
done
echo
for name in dlock libdlock0 libdlock-dev; do
  [[ -n ${by_name[$name]:-} ]] || fail "no $name package"
done

# dlock and libdlock0 hold ELF files: an empty Depends would mean dpkg-shlibdeps did not run.
for name in dlock libdlock0; do
  depends=$(dpkg-deb -f "${by_name[$name]}" Depends)
  [[ $depends == *libc6* ]] || fail "$name: Depends '$depends' has no libc6 (dpkg-shlibdeps?)"
  echo "package: $name Depends: $depends"
done
version=$(dpkg-deb -f "${by_name[libdlock0]}" Version)
dev_depends=$(dpkg-deb -f "${by_name[libdlock-dev]}" Depends)
[[ $dev_depends == *"libdlock0 (= $version)"* ]] ||
  fail "libdlock-dev: Depends '$dev_depends' lacks libdlock0 (= $version)"
echo "package: libdlock-dev Depends: $dev_depends"

# Where each file belongs: the versioned library alone in libdlock0, the link in -dev.
has() { grep -Eq "$2" <<<"${contents[$1]}"; }
has libdlock0 '/libdlock\.so\.0 -> ' || fail "libdlock0 lacks libdlock.so.0"
if has libdlock0 '/libdlock\.so( |$)'; then fail "libdlock0 holds libdlock.so"; fi
has libdlock-dev '/libdlock\.so -> ' || fail "libdlock-dev lacks libdlock.so"
has libdlock-dev '/include/dlock/dlock\.hpp$' || fail "libdlock-dev lacks the headers"
has libdlock-dev '/dlockConfig\.cmake$' || fail "libdlock-dev lacks dlockConfig.cmake"
has libdlock-dev '/pkgconfig/dlock\.pc$' || fail "libdlock-dev lacks dlock.pc"
has dlock '\./usr/bin/dlock$' || fail "dlock lacks usr/bin/dlock"
# The SONAME the runtime package is named after.
libdir=$(dirname "$(find "$root/usr" -name libdlock.so.0 -print -quit)")
dynamic=$(readelf -d "$libdir/libdlock.so.0")
grep -q 'SONAME.*\[libdlock\.so\.0\]' <<<"$dynamic" || fail "libdlock.so.0 has no SONAME libdlock.so.0"

# The unpacked CLI: the demo's own checks (exact counter, increasing tokens) decide.
cli="$root/usr/bin/dlock"
# It links dlock statically; if that changes, the unpacked libdlock0 is where it must load from.
LD_LIBRARY_PATH="$libdir" "$cli" --version
DLOCK_STORE="file://$root/store" LD_LIBRARY_PATH="$libdir" \
  "$cli" demo --workers 2 --iterations 5 ||
  fail "the unpacked dlock demo failed"
echo "package: unpacked dlock demo passed"

# Man page, completion, and the consumer project (find_package, dlock::shared, pkg-config).
scripts/consumer_check.sh --prefix "$root/usr"
echo "package: ${#debs[@]} packages in $out checked"
