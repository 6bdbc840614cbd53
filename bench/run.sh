#!/usr/bin/env bash
# Reproduces docs/BENCHMARKS.md: builds Release, starts its own Redis, etcd and PostgreSQL (a
# throwaway initdb cluster) on free loopback ports, runs every workload and its raw limit
# interleaved, ROUNDS times (default 2),
# and writes the report. Usage: bench/run.sh [OUT.md]   (env: ROUNDS, BUILD)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/BENCHMARKS.md}
rounds=${ROUNDS:-2}
build=${BUILD:-build/release}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDLOCK_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target dlock_bench dlock_scale dlock_core_bench >/dev/null
bench="$build/bench/dlock-bench"

tmp=$(mktemp -d)
cleanup() {
  [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null || true
  [[ -n "${etcd_pid:-}" ]] && kill "$etcd_pid" 2>/dev/null || true
  [[ -n "${pg_pid:-}" ]] && kill -INT "$pg_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rport=$(free_port)
eport=$(free_port)
pport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  >"$tmp/redis.log" 2>&1 &
redis_pid=$!
etcd --name bench --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "bench=http://127.0.0.1:$pport" >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
# PostgreSQL: a cluster made with initdb in the temp dir, run as an unprivileged user when
# this script runs as root (the server refuses root). synchronous_commit is off for both
# peers: with it on, every pair of both is bound by two WAL flushes on a shared, noisy disk
# and the ratio says nothing about the client.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgport=$(free_port)
mkdir -p "$tmp/pg"
echo bench >"$tmp/pg/pw"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  pguser=postgres
  id -u "$pguser" >/dev/null 2>&1 || pguser=nobody
  chmod 711 "$tmp"
  chown "$pguser" "$tmp/pg" "$tmp/pg/pw"
  as_pg=(setpriv --reuid="$pguser" --regid="$(id -g "$pguser")" --clear-groups --)
fi
"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/pg/data" -U bench --pwfile="$tmp/pg/pw" -A scram-sha-256 \
  -E UTF8 --locale=C --no-sync >"$tmp/pg/initdb.log" 2>&1
"${as_pg[@]}" "$pgbin/postgres" -D "$tmp/pg/data" -c listen_addresses=127.0.0.1 -p "$pgport" \
  -c unix_socket_directories="$tmp/pg" -c max_connections=200 -c shared_buffers=128MB \
  -c synchronous_commit=off \
  >"$tmp/pg/postgres.log" 2>&1 &
pg_pid=$!
pguri="postgres://bench:bench@127.0.0.1:$pgport/postgres"
for _ in $(seq 100); do
  redis-cli -p "$rport" ping >/dev/null 2>&1 && ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$eport" \
    endpoint health >/dev/null 2>&1 && "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break
  sleep 0.1
done

results="$tmp/results.jsonl"
run() {
  "$bench" "$@" --redis "127.0.0.1:$rport" --etcd "127.0.0.1:$eport" --postgres "$pguri" |
    tee -a "$results"
}

# R2's limit: redis-benchmark feeding dlock's own acquire and release scripts, 32 clients,
# pipeline 16. A pair is one acquire + one release, so pairs/s = 1 / (1/acq + 1/rel).
r2_limit() {
  local acq rel
  eval "$("$bench" --print-redis-scripts)"  # sets ACQUIRE_SHA_ARGS / RELEASE_SHA_ARGS
  redis-cli -p "$rport" script load "$ACQUIRE_SCRIPT" >/dev/null
  redis-cli -p "$rport" script load "$RELEASE_SCRIPT" >/dev/null
  acq=$(redis-benchmark -p "$rport" -P 16 -c 32 -n 200000 -r 1000000 --csv \
    evalsha "$ACQUIRE_SHA" $ACQUIRE_ARGS | tail -1 | cut -d, -f2 | tr -d '"')
  rel=$(redis-benchmark -p "$rport" -P 16 -c 32 -n 200000 -r 1000000 --csv \
    evalsha "$RELEASE_SHA" $RELEASE_ARGS | tail -1 | cut -d, -f2 | tr -d '"')
  /usr/bin/python3 -c "import json; a=$acq; r=$rel; print(json.dumps({'peer':'redis-benchmark','workload':'R2','ok':True,'rate':round(1/(1/a+1/r),1),'unit':'pairs/s','note':f'acquire {a}/s, release {r}/s, -P 16 -c 32'}))" | tee -a "$results"
}

for round in $(seq "$rounds"); do
  echo "== round $round" >&2
  run --workload R1 --peer raw
  run --workload R1 --peer raw-scripts
  run --workload R1
  r2_limit
  run --workload R2
  run --workload R3
  run --workload E1 --peer raw
  run --workload E1
  run --workload E2 --peer raw
  run --workload E2
  run --workload E3
  run --workload E3 --store "etcd+txn://127.0.0.1:$eport"
  run --workload P1 --peer raw
  run --workload P1
  run --workload P2 --peer raw
  run --workload P2
  run --workload P3
done
"$build/bench/dlock_scale" --store memory:// --locks 100000 --secs 40 --ttl 30s | tee -a "$results"
"$build/bench/dlock_scale" --store "redis://127.0.0.1:$rport" --locks 100000 --secs 40 --ttl 30s \
  | tee -a "$results"

/usr/bin/python3 bench/report.py "$results" "$tmp/redis.log" "$out" "$*"
echo "wrote $out" >&2
