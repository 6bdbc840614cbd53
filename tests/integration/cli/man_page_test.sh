#!/usr/bin/env bash
# Renders the dlock(1) manual page as man(1) would and checks that it documents what
# `dlock --help` offers: every subcommand, every option of `dlock --help` and of each
# `dlock SUBCOMMAND --help`, and every environment variable they name; and that groff
# formats it without a warning.
# Usage: man_page_test.sh DLOCK_BINARY MAN_PAGE
set -uo pipefail
dlock=$1
page=$2
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
[[ -z $warnings ]] || fail "groff warns: $warnings"
# man -l formats the file as `man dlock` shows it once installed; ASCII so that options read
# "--store" (UTF-8 output would use a minus sign), wide so that nothing wraps mid-option.
rendered=$(MANWIDTH=200 LC_ALL=C MANPAGER=cat MAN_KEEP_FORMATTING= man -l "$page" 2>&1) ||
  fail "man -l $page failed: $rendered"
grep -q "^NAME" <<<"$rendered" || fail "no NAME section in the rendered page"
for section in SYNOPSIS DESCRIPTION "GLOBAL OPTIONS" COMMANDS ENVIRONMENT "EXIT STATUS"; do
  grep -q "^$section" <<<"$rendered" || fail "no $section section"
done

documented() {  # $1 appears as a word in the rendered page.
  grep -qE -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)" <<<"$rendered"
}
options_of() {  # The option names that open the Options: lines of an --help text.
  sed -n '/^Options:/,/^$/p' <<<"$1" | grep -E '^  +-' | awk '{print $1}' | tr ',' '\n' | sort -u
}
env_of() {  # The environment variables an --help text names, as (Env:NAME).
  grep -oE '\(Env:[A-Z_]+\)' <<<"$1" | sed -E 's/\(Env:(.*)\)/\1/' | sort -u
}

help=$("$dlock" --help)
subs=$(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | awk 'NF && !/^Subcommands:/ {print $1}')
[[ -n $subs ]] || fail "no subcommands parsed from dlock --help"
checked=0
for sub in "" $subs; do
  text=$help
  if [[ -n $sub ]]; then
    text=$("$dlock" "$sub" --help)
    documented "$sub" || fail "subcommand '$sub' is not in the man page"
    grep -qE "^ +$sub( |$)" <<<"$rendered" || fail "subcommand '$sub' has no heading of its own"
  fi
  for opt in $(options_of "$text"); do
    documented "$opt" || fail "option '$opt' (dlock $sub --help) is not in the man page"
    checked=$((checked + 1))
  done
  for var in $(env_of "$text"); do
    documented "$var" || fail "variable '$var' (dlock $sub --help) is not in the man page"
    checked=$((checked + 1))
  done
done
for var in DLOCK_NAME DLOCK_STORE DLOCK_FENCING_TOKEN; do  # Set for run's command.
  documented "$var" || fail "variable '$var' is not in the man page"
done
for code in 0 1 64 69 70 75 76 126 127; do
  grep -qE "^ +([0-9]+, )*$code(,| |\$)" <<<"$rendered" ||
    fail "exit status $code is not in EXIT STATUS"
done

if ((failures)); then
  echo "man page: $failures failure(s)"
  exit 1
fi
echo "man page: ok (renders; $(wc -w <<<"$subs") subcommands and $checked options and variables of --help documented)"
