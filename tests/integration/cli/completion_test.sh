#!/usr/bin/env bash
# Sources the bash completion of dlock in a clean bash and checks what it offers, the way bash
# calls it (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT), and that it offers every
# subcommand and option that `dlock --help` and `dlock SUBCOMMAND --help` list.
# Usage: completion_test.sh DLOCK_BINARY COMPLETION_FILE
set -uo pipefail
dlock=$1
completion=$2
failures=0

# Completes the command line $1 (cursor at its end) and prints COMPREPLY one per line.
complete_line() {
  bash --norc --noprofile -c '
    source "$1" || exit 2
    COMP_LINE=$2
    COMP_POINT=${#COMP_LINE}
    # Split as bash does for COMP_WORDS (":" and "=" are word breaks too).
    read -r -a COMP_WORDS <<<"$(sed -E "s/([:=])/ \1 /g" <<<"$COMP_LINE")"
    [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _dlock dlock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]:-}"
    printf "%s\n" "${COMPREPLY[@]}"
  ' _ "$completion" "$1"
}

# expect LINE WORD...: every WORD is offered for LINE.
expect() {
  local line=$1 got w
  shift
  got=$(complete_line "$line")
  for w in "$@"; do
    if ! grep -qxF -- "$w" <<<"$got"; then
      echo "FAIL: '$line<TAB>' does not offer '$w'; it offers: $(tr '\n' ' ' <<<"$got")"
      failures=$((failures + 1))
    fi
  done
}

# expect_only LINE WORD...: exactly these WORDs (any order).
expect_only() {
  local line=$1 got want
  shift
  got=$(complete_line "$line" | sort | tr '\n' ' ')
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  if [[ $got != "$want" ]]; then
    echo "FAIL: '$line<TAB>' offers '$got', expected '$want'"
    failures=$((failures + 1))
  fi
}

expect_only "dlock " run elect status leader list release demo
expect_only "dlock l" leader list
expect "dlock elect --" --value --restart --ttl --kill-after
expect "dlock run --" --shared --limit
expect_only "dlock r" run release
expect "dlock --" --store --json --verbose --log-format --help --version
expect "dlock run --" --ttl --wait --no-wait --kill-after --metadata --store --json --verbose
expect_only "dlock release --f" --force
expect_only "dlock --log-format " text json
expect_only "dlock status --log-format=j" json
expect_only "dlock --store e" etcd:// etcds:// etcd+txn:// etcd+txn+tls://
expect_only "dlock --store rediss" rediss:// rediss+sentinel:// rediss+cluster://
expect_only "dlock run --store redis:" //
expect_only "dlock --store=f" file://
expect_only "dlock --store redis://h:6379 st" status
expect "dlock run --ttl 10s job -- ba" bash
expect_only "dlock run job -- sh -c ech" ""  # The command's own arguments: files (none match).

# Everything `dlock --help` lists is offered.
help=$("$dlock" --help)
subs=$(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | awk 'NF && !/^Subcommands:/ {print $1}')
[[ -n $subs ]] || { echo "FAIL: no subcommands parsed from dlock --help"; failures=$((failures + 1)); }
# shellcheck disable=SC2086
expect "dlock " $subs
options_of() {  # The options an --help text lists: the names that open its Options: lines.
  sed -n '/^Options:/,/^$/p' <<<"$1" | grep -E '^  +-' | awk '{print $1}' | tr ',' '\n' | sort -u
}
# shellcheck disable=SC2046
expect "dlock -" $(options_of "$help")
for sub in $subs; do
  sub_options=$(options_of "$("$dlock" "$sub" --help)")
  # shellcheck disable=SC2086
  expect "dlock $sub -" $sub_options
done

if ((failures)); then
  echo "completion: $failures failure(s)"
  exit 1
fi
echo "completion: ok ($(wc -w <<<"$subs") subcommands, every option of dlock --help offered)"
