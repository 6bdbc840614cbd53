#!/usr/bin/env bash
# A/B comparison of two dlock-bench binaries (e.g. before and after a change) on the same
# Redis and etcd servers, interleaved per workload, ROUNDS times (default 3): R1 R2 R3 E1 E2
# E3. Prints one JSON line per run with "build": A or B. Usage:
#   bench/ab.sh OLD/dlock-bench NEW/dlock-bench > results.jsonl
set -euo pipefail
a=$1
b=$2
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
cleanup() {
  [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null || true
  [[ -n "${etcd_pid:-}" ]] && kill "$etcd_pid" 2>/dev/null || true
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
etcd --name ab --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "ab=http://127.0.0.1:$pport" >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
  redis-cli -p "$rport" ping >/dev/null 2>&1 && ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$eport" \
    endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
one() {  # label binary workload
  "$2" --workload "$3" --redis "127.0.0.1:$rport" --etcd "127.0.0.1:$eport" |
    /usr/bin/python3 -c "import json,sys; [print(json.dumps({**json.loads(l), 'build': '$1'})) for l in sys.stdin if l.strip()]"
}
for round in $(seq "$rounds"); do
  for w in R1 R2 R3 E1 E2 E3; do
    if ((round % 2)); then one A "$a" "$w"; one B "$b" "$w"; else one B "$b" "$w"; one A "$a" "$w"; fi
  done
done
