#!/usr/bin/python3
"""Writes docs/BENCHMARKS.md from bench/run.sh's JSON lines (stdlib only)."""
import json
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

results_path, _redis_log, out_path = sys.argv[1:4]
rows = [json.loads(l) for l in open(results_path) if l.strip().startswith("{")]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


runs = defaultdict(list)
scale = []
for r in rows:
    if "locks" in r:
        scale.append(r)
    else:
        runs[(r["workload"], r["peer"], r.get("store", ""))].append(r)


def rates(key):
    return [r["rate"] for r in runs.get(key, []) if r.get("ok")]


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def cell(key):
    v = rates(key)
    if not v:
        return "n/a", None
    med = statistics.median(v)
    spread = (max(v) - min(v)) / med * 100 if med else 0
    return f"{fmt(med)} (±{spread:.0f} %, {len(v)} runs)", med


LIMITS = {"R1": ("R1", "raw-hiredis", ""), "R2": ("R2", "redis-benchmark", ""),
          "E1": ("E1", "raw-grpc", ""), "E2": ("E2", "raw-grpc", "")}
TARGETS = {"R1": "≥ 0.9× limit", "R2": "≥ 55,000 pairs/s", "R3": "≥ 3,900 acq/s, max wait ≤ 50 ms, ≤ 1.2 attempts/acq",
           "E1": "≥ 660 pairs/s (Go Mutex)", "E2": "≥ 3,700 pairs/s (Go Mutex)",
           "E3": "≥ 250 acq/s FIFO, max wait ≤ 150 ms"}

lines = []
w = lines.append
w("# Benchmarks\n")
w("Produced by `bench/run.sh` (one command: builds Release, starts its own Redis and etcd on")
w("loopback, runs each workload and the store's own limit interleaved, twice, and writes this")
w("file). Machines here are noisy: compare the ratios within this run, not absolute numbers")
w("across runs. Workload definitions: `dlock-bench --help` and issue text in bench/dlock_bench.cpp.\n")
w("## Machine\n")
w(f"- CPU: {sh('nproc')} cores, {sh('grep -m1 \"model name\" /proc/cpuinfo | cut -d: -f2').strip()}")
w(f"- Kernel: {platform.release()}; compiler: {sh('g++ --version | head -1')}")
w(f"- Redis: {sh('redis-server --version')}")
w(f"- etcd: {sh('etcd --version | head -1')}")
w(f"- Date: {sh('date -u +%Y-%m-%dT%H:%MZ')}\n")
w("## Results (median of runs, ± spread between runs)\n")
w("| workload | dlock | limit (same run) | ratio | target | latency / wait p50 · p99 · max (µs) | note |")
w("|---|---|---|---|---|---|---|")
for wl in ["R1", "R2", "R3", "E1", "E2", "E3"]:
    for store in sorted({k[2] for k in runs if k[0] == wl and k[1] == "dlock"}):
        ours, med = cell((wl, "dlock", store))
        lim_txt, lim = ("—", None)
        if wl in LIMITS:
            lim_txt, lim = cell(LIMITS[wl])
            lim_txt = f"{lim_txt} ({LIMITS[wl][1]})"
        ratio = f"{med / lim:.2f}×" if med and lim else "—"
        last = [r for r in runs[(wl, "dlock", store)] if r.get("ok")]
        lat = "—"
        note = ""
        if last:
            r = last[-1]
            if "p50_us" in r:
                lat = f"{r['p50_us']:.0f} · {r['p99_us']:.0f} · {r['max_us']:.0f}"
            note = r.get("note", "")
            if "counter" in r:
                note = f"counter {r['counter']}/{r['expected']}; " + note
        name = wl + (f" `{store.split(':')[0]}`" if store else "")
        w(f"| {name} | {ours} | {lim_txt} | {ratio} | {TARGETS[wl]} | {lat} | {note} |")
w("")
if scale:
    w("## Scale: 100,000 locks held with auto-renew (TTL 30 s) by one process\n")
    w("| store | held at end | losses | renewals | RSS (MiB) | CPU while holding (cores) |")
    w("|---|---|---|---|---|---|")
    for s in scale:
        w(f"| {s['store']} | {s['held_at_end']:,}/{s['locks']:,} | {s['losses']} | {s['renewals']:,} "
          f"| {s['rss_mib']:.1f} | {s['cpu_cores_while_holding']:.3f} |")
    w("")
w("## Raw results\n")
w("```")
for r in rows:
    w(json.dumps(r))
w("```")
open(out_path, "w").write("\n".join(lines) + "\n")
