#!/usr/bin/env bash
# The latency scenario of gateway.sh alone, repeated: vakt on a fresh database, vakt-load at
# 10,000 events/s (1,000 connections, 1,000 accounts, 10 s), on SQLite and on PostgreSQL (when
# reachable), RUNS times each. Prints the ACK latency and, from vakt's own metrics, the share of
# ACKs that took over 10 ms inside vakt (frame read to answer written), the writer's mean commit
# time, frames per commit, and how many commits and (SQLite) WAL fsyncs took over 20 ms: a few
# of those are what the p99 and p99.9 are made of. VAKT_BIN runs another build;
# VAKT_BENCH_KEEP=PREFIX keeps the last run's vakt-load JSON and vakt's whole /metrics (with
# `vakt_ack_wait_seconds`, the ACK's time split by stage) as PREFIX.json and PREFIX.metrics.
# Two readings of the machine itself go beside them, since the tail moves with the VM's host
# as well as with the build: the CPU time the hypervisor stole during each run (/proc/stat), and,
# before the runs and after them, a raw fdatasync probe on the databases' filesystem (4 KiB
# appends, each fdatasynced, 3 s) and a pause probe (a loop on each CPU reading the clock for
# 5 s, counting the gaps in which it did not run: on an idle VM those are the host's doing).
#
#   benches/latency.sh [RUNS] [RATE] [SECONDS]    (default 3 runs, 10000 events/s, 10 s)
#
# Environment: VAKT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test; a fresh
# database is created and dropped for each run), VAKT_BENCH_WRITER_CPU and VAKT_BENCH_PACED_CPU:
# the CPU split of gateway.sh's runs at a fixed rate (benches/cpu_split.sh: vakt's writer on the
# last CPU, vakt-load on the first). For attribution runs: VAKT_BENCH_TMP (where the databases go,
# default /tmp; /dev/shm takes the disk out) and VAKT_BENCH_CONFIG (TOML appended to vakt's
# config, e.g. $'[supervision]\ncheck_every_ms = 60000').
# VAKT_BENCH_ONLY=sqlite or postgres runs one backend only (for A/Bs of a change to one).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rate=${2:-10000}
seconds=${3:-10}
pg=${VAKT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release -q --bins
vakt=${VAKT_BIN:-$PWD/target/release/vakt}
load=$PWD/target/release/vakt-load
work=$(mktemp -d "${VAKT_BENCH_TMP:-/tmp}/vakt-latency.XXXXXX")
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
source benches/cpu_split.sh

config() { # DB_URL
  printf '[database]\nurl = "%s"\n[http]\nbind = "127.0.0.1:17580"\n[receiver]\nmax_connections = 200000\n' "$1"
  [ "$writer_cpu" = none ] || echo "writer_cpu = $writer_cpu"
  printf '[[listener]]\nkind = "tcp"\nbind = "127.0.0.1:17500"\n'
  "$load" --print-sites --accounts 1000
  printf '%s\n' "${VAKT_BENCH_CONFIG:-}"
}

cat > "$work/fsync_probe.py" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
times, end = [], time.monotonic() + 3
while time.monotonic() < end:
    t = time.monotonic()
    os.write(fd, bytes(4096))
    os.fdatasync(fd)
    times.append(time.monotonic() - t)
os.close(fd)
os.unlink(path)
times.sort()
q = lambda p: 1000 * times[min(len(times) - 1, int(p * len(times)))]
print(f"raw fdatasync of a 4 KiB append ({sys.argv[2]}, {len(times)} in 3 s): "
      f"p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, max {1000 * times[-1]:.2f} ms")
PY

cat > "$work/pause_probe.py" <<'PY'
import sys, time
last = time.monotonic()
end, gaps = last + 5, []
while last < end:
    t = time.monotonic()
    if t - last > 0.002:
        gaps.append(t - last)
    last = t
print(f"pauses on CPU {sys.argv[1]} ({sys.argv[2]}, 5 s): {len(gaps)} over 2 ms, "
      f"{sum(g > 0.01 for g in gaps)} over 10 ms, longest {1000 * max(gaps, default=0):.1f} ms")
PY

probe_machine() { # WHEN
  python3 "$work/fsync_probe.py" "$work" "$1"
  local cpu pids=()
  for cpu in $(seq 0 $(($(nproc) - 1))); do
    taskset -c "$cpu" python3 "$work/pause_probe.py" "$cpu" "$1" > "$work/pause$cpu" & pids+=($!)
  done
  wait "${pids[@]}"
  for cpu in $(seq 0 $(($(nproc) - 1))); do cat "$work/pause$cpu"; done
}

cat > "$work/row.py" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
# /proc/stat's cpu line before and after the run: the share of all CPU time the host stole.
before, after = ([int(x) for x in open(f).read().split()[1:]] for f in sys.argv[3:5])
ticks = [b - a for a, b in zip(before, after)]
steal = 100 * ticks[7] / sum(ticks)
l = r["latency_ms"]
m = dict(x.rsplit(None, 1) for x in open(sys.argv[2]))
commit = 1000 * float(m["vakt_commit_seconds_sum"]) / float(m["vakt_commit_seconds_count"])
frames = float(m["vakt_commit_batch_frames_sum"]) / float(m["vakt_commit_batch_frames_count"])
# What the answers waited for beyond the commit: SQLite's WAL fsyncs (PostgreSQL: in the commit).
slow = lambda name: int(float(m[f"{name}_count"]) - float(m[f'{name}_bucket{{le="0.02"}}']))
syncs = (f"{slow('vakt_wal_sync_seconds')} of {float(m['vakt_wal_sync_seconds_count']):.0f}"
         if "vakt_wal_sync_seconds_count" in m else "-")
# vakt's own view of the same ACKs (from reading the frame to writing its answer): the share
# over 10 ms. Beside vakt-load's p99 it tells a delay inside vakt from one outside it (vakt-load,
# the kernel's loopback path, a CPU taken by another process).
acks = float(m['vakt_ack_latency_seconds_count{transport="tcp"}'])
inside = 100 * (acks - float(m['vakt_ack_latency_seconds_bucket{transport="tcp",le="0.01"}'])) / acks
print(f"| {r['label']} | {r['acks_per_sec']:.0f} | {r['sent'] - r['acks']} | {l['p50']:.2f} "
      f"| {l['p99']:.2f} | {l['p99_9']:.2f} | {inside:.2f} | {commit:.2f} | {frames:.1f} "
      f"| {slow('vakt_commit_seconds')} | {syncs} | {steal:.1f} |")
PY

one() { # DB_URL LABEL
  config "$1" > "$work/vakt.toml"
  RUST_LOG=warn "$vakt" serve --config "$work/vakt.toml" > "$work/out" 2> "$work/err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.1; done
  # Never measure some other process on the port (a vakt left running, say).
  grep -q ready "$work/out" || { echo "vakt did not start:" >&2; cat "$work/err" >&2; exit 1; }
  head -1 /proc/stat > "$work/stat0"
  load_cmd paced "$load" --json --label "$2" --target 127.0.0.1:17500 -c 1000 -a 1000 --rate "$rate" -d "$seconds" \
    > "$work/run.json"
  head -1 /proc/stat > "$work/stat1"
  curl -s http://127.0.0.1:17580/metrics > "$work/all.metrics"
  grep -E '^vakt_(commit_seconds|commit_batch_frames|wal_sync_seconds)_(sum|count)|^vakt_(commit|wal_sync)_seconds_bucket\{le="0.02"\}|^vakt_ack_latency_seconds_(count|bucket\{transport="tcp",le="0.01"\})' \
    "$work/all.metrics" > "$work/metrics.txt"
  [ -z "${VAKT_BENCH_KEEP:-}" ] || { cp "$work/run.json" "$VAKT_BENCH_KEEP.json"; cp "$work/all.metrics" "$VAKT_BENCH_KEEP.metrics"; }
  python3 "$work/row.py" "$work/run.json" "$work/metrics.txt" "$work/stat0" "$work/stat1"
  kill -TERM $pid; wait $pid 2>/dev/null || true
}

probe_machine before
echo "| run | acks/s | not acked | p50 ms | p99 ms | p99.9 ms | vakt ACKs > 10 ms % | commit mean ms | frames/commit | commits > 20 ms | WAL fsyncs > 20 ms | CPU stolen % |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
only=${VAKT_BENCH_ONLY:-}
case "$only" in ""|sqlite|postgres) ;; *) echo "VAKT_BENCH_ONLY must be sqlite or postgres" >&2; exit 2 ;; esac
for i in $(seq 1 "$runs"); do
  [ "$only" != postgres ] || break
  one "sqlite://$work/l$i.db" "SQLite, run $i"
  rm -f "$work"/l$i.db*
done
if [ "$only" = sqlite ]; then
  :
elif psql "$pg" -qAt -c 'select 1' > /dev/null 2>&1; then
  for i in $(seq 1 "$runs"); do
    db=vakt_latency_$$_$i
    psql "$pg" -q -c "CREATE DATABASE $db"
    one "${pg%/*}/$db" "PostgreSQL, run $i"
    psql "$pg" -q -c "DROP DATABASE $db WITH (FORCE)"
  done
else
  echo "PostgreSQL not reachable at $pg: skipped" >&2
fi
probe_machine after
