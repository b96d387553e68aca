#!/usr/bin/env bash
# The latency scenario of gateway.sh alone, repeated: vakt on a fresh database, vakt-load at
# 10,000 events/s (1,000 connections, 1,000 accounts, 10 s), on SQLite and on PostgreSQL (when
# reachable), RUNS times each. Prints the ACK latency and, from vakt's own metrics, the writer's
# mean commit time, frames per commit, and how many commits and (SQLite) WAL fsyncs took over
# 20 ms: a few of those are what the p99 and p99.9 are made of. VAKT_BIN runs another build.
#
#   benches/latency.sh [RUNS] [RATE]    (default 3 runs, 10000 events/s)
#
# Environment: VAKT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test; a fresh
# database is created and dropped for each run), VAKT_BENCH_WRITER_CPU and VAKT_BENCH_LOAD_CPU:
# the CPU split of gateway.sh (default: vakt's writer on the last CPU, vakt-load on the first;
# `none` for no pinning).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rate=${2:-10000}
pg=${VAKT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release -q --bins
vakt=${VAKT_BIN:-$PWD/target/release/vakt}
load=$PWD/target/release/vakt-load
work=$(mktemp -d /tmp/vakt-latency.XXXXXX)
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
source benches/cpu_split.sh

config() { # DB_URL
  printf '[database]\nurl = "%s"\n[http]\nbind = "127.0.0.1:17580"\n[receiver]\nmax_connections = 200000\n' "$1"
  [ "$writer_cpu" = none ] || echo "writer_cpu = $writer_cpu"
  printf '[[listener]]\nkind = "tcp"\nbind = "127.0.0.1:17500"\n'
  "$load" --print-sites --accounts 1000
}

cat > "$work/row.py" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read())
l = r["latency_ms"]
m = dict(x.rsplit(None, 1) for x in open(sys.argv[2]))
commit = 1000 * float(m["vakt_commit_seconds_sum"]) / float(m["vakt_commit_seconds_count"])
frames = float(m["vakt_commit_batch_frames_sum"]) / float(m["vakt_commit_batch_frames_count"])
# What the answers waited for beyond the commit: SQLite's WAL fsyncs (PostgreSQL: in the commit).
slow = lambda name: int(float(m[f"{name}_count"]) - float(m[f'{name}_bucket{{le="0.02"}}']))
syncs = (f"{slow('vakt_wal_sync_seconds')} of {float(m['vakt_wal_sync_seconds_count']):.0f}"
         if "vakt_wal_sync_seconds_count" in m else "-")
print(f"| {r['label']} | {r['acks_per_sec']:.0f} | {r['sent'] - r['acks']} | {l['p50']:.2f} "
      f"| {l['p99']:.2f} | {l['p99_9']:.2f} | {commit:.2f} | {frames:.1f} "
      f"| {slow('vakt_commit_seconds')} | {syncs} |")
PY

one() { # DB_URL LABEL
  config "$1" > "$work/vakt.toml"
  RUST_LOG=warn "$vakt" serve --config "$work/vakt.toml" > "$work/out" 2> "$work/err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.1; done
  # Never measure some other process on the port (a vakt left running, say).
  grep -q ready "$work/out" || { echo "vakt did not start:" >&2; cat "$work/err" >&2; exit 1; }
  "${pin_load[@]}" "$load" --json --label "$2" --target 127.0.0.1:17500 -c 1000 -a 1000 --rate "$rate" -d 10 \
    > "$work/run.json"
  curl -s http://127.0.0.1:17580/metrics \
    | grep -E '^vakt_(commit_seconds|commit_batch_frames|wal_sync_seconds)_(sum|count)|^vakt_(commit|wal_sync)_seconds_bucket\{le="0.02"\}' \
    > "$work/metrics.txt"
  python3 "$work/row.py" "$work/run.json" "$work/metrics.txt"
  kill -TERM $pid; wait $pid 2>/dev/null || true
}

echo "| run | acks/s | not acked | p50 ms | p99 ms | p99.9 ms | commit mean ms | frames/commit | commits > 20 ms | WAL fsyncs > 20 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for i in $(seq 1 "$runs"); do
  one "sqlite://$work/l$i.db" "SQLite, run $i"
  rm -f "$work"/l$i.db*
done
if psql "$pg" -qAt -c 'select 1' > /dev/null 2>&1; then
  for i in $(seq 1 "$runs"); do
    db=vakt_latency_$$_$i
    psql "$pg" -q -c "CREATE DATABASE $db"
    one "${pg%/*}/$db" "PostgreSQL, run $i"
    psql "$pg" -q -c "DROP DATABASE $db WITH (FORCE)"
  done
else
  echo "PostgreSQL not reachable at $pg: skipped" >&2
fi
