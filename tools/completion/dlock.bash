# bash completion for dlock(1): subcommands, options (global ones anywhere before `--`),
# --store URL schemes, --log-format values, and the command after `dlock run NAME --`.
# Installed as share/bash-completion/completions/dlock; needs nothing from bash-completion.
# tests/integration/cli/completion_test.sh checks it against `dlock --help`.

_dlock_subcommands="run elect status leader list release demo"
_dlock_global_options="--store --json -v --verbose --log-format -h --help --version"
_dlock_run_options="--ttl --wait --no-wait --kill-after --on-risk --metadata --metrics-file --shared --limit"
_dlock_elect_options="--ttl --wait --no-wait --kill-after --on-risk --metadata --metrics-file --value --restart"
_dlock_status_options="--watch"
_dlock_leader_options="--watch"
_dlock_list_options=""
_dlock_release_options="--force"
_dlock_demo_options="--workers --iterations --name --ttl"
_dlock_schemes="file:// redis:// rediss:// redis+sentinel:// rediss+sentinel:// redis+cluster:// rediss+cluster:// etcd:// etcds:// etcd+txn:// etcd+txn+tls:// postgres:// postgresql:// zk://"

# The word being completed as the user sees it: bash splits words at ':' and '=' too
# (COMP_WORDBREAKS), so "redis://h" arrives as several words; rebuild it from the line.
_dlock_current_word() {
  local line=${COMP_LINE:0:COMP_POINT}
  printf '%s' "${line##*[[:space:]]}"
}

# Sets COMPREPLY to the words of $1 that start with $2, minus what bash will not replace
# (everything up to the last ':' or '=' of $2, which bash treats as separate words).
_dlock_reply() {
  local words=$1 cur=$2 w
  COMPREPLY=()
  for w in $words; do
    [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
  done
  if [[ $cur == *[:=]* ]]; then
    local keep=${cur%"${cur##*[:=]}"}
    local i
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$keep"}; done
  fi
}

_dlock() {
  local cur prev sub="" i word
  local -a words
  cur=$(_dlock_current_word)
  # The whole words before the current one (an option's value may hold ':' or '=').
  local line=${COMP_LINE:0:COMP_POINT}
  line=${line%"$cur"}
  read -r -a words <<<"$line"
  prev=${words[${#words[@]}-1]:-}

  # The subcommand, and whether `--` (the start of run's command) came before the cursor.
  local dashdash=-1 expect_value=0
  for ((i = 1; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if ((expect_value)); then
      expect_value=0
      continue
    fi
    case $word in
      --) dashdash=$i; break ;;
      --store | --log-format | --ttl | --wait | --kill-after | --on-risk | --metadata | \
        --metrics-file | --workers | --iterations | --name | --limit | --value) expect_value=1 ;;
      -*) ;;
      *) [[ -z $sub ]] && sub=$word ;;
    esac
  done

  # After `dlock run ... NAME --`: the command, then its own arguments (files).
  if ((dashdash >= 0)); then
    if ((${#words[@]} == dashdash + 1)); then
      mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
  fi

  case $prev in
    --store)
      _dlock_reply "$_dlock_schemes" "$cur"
      compopt -o nospace 2>/dev/null
      return 0
      ;;
    --log-format)
      _dlock_reply "text json" "$cur"
      return 0
      ;;
    --on-risk)
      _dlock_reply "ignore term" "$cur"
      return 0
      ;;
    --ttl | --wait | --kill-after)
      _dlock_reply "500ms 10s 30s 1m 5m 1h" "$cur"
      return 0
      ;;
    --metrics-file)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return 0
      ;;
    --metadata | --workers | --iterations | --name | --limit | --value)
      COMPREPLY=()
      return 0
      ;;
  esac
  case $cur in
    --store=*)
      _dlock_reply "$_dlock_schemes" "${cur#--store=}"
      compopt -o nospace 2>/dev/null
      return 0
      ;;
    --log-format=*)
      _dlock_reply "text json" "${cur#--log-format=}"
      return 0
      ;;
  esac

  if [[ -z $sub ]]; then
    if [[ $cur == -* ]]; then
      _dlock_reply "$_dlock_global_options" "$cur"
    else
      _dlock_reply "$_dlock_subcommands" "$cur"
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    local own=""
    case $sub in
      run) own=$_dlock_run_options ;;
      elect) own=$_dlock_elect_options ;;
      status) own=$_dlock_status_options ;;
      leader) own=$_dlock_leader_options ;;
      list) own=$_dlock_list_options ;;
      release) own=$_dlock_release_options ;;
      demo) own=$_dlock_demo_options ;;
    esac
    _dlock_reply "$own ${_dlock_global_options/--version/}" "$cur"
    return 0
  fi
  COMPREPLY=()  # Lock names: dlock does not ask the store while you type.
  return 0
}

complete -F _dlock dlock
