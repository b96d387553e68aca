#!/usr/bin/env bash
# The gateway benchmark: vakt on a fresh SQLite database (and PostgreSQL when reachable)
# against vakt-load, side by side with pysiaalarm, printed as one Markdown table.
#
#   benches/gateway.sh [SECONDS] [REPEAT]   (default 10 s per run, each burst run 3 times)
#
# Environment: VAKT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test; a fresh
# database is created and dropped), VAKT_BENCH_SCALE (connections for the scale run; default
# 100000, capped by the open-file limit), VAKT_BENCH_PYSIA (a python with pysiaalarm; default:
# a virtualenv made in target/bench-venv), VAKT_BENCH_WRITER_CPU and VAKT_BENCH_LOAD_CPU (see
# below), VAKT_BENCH_CALIBRATE=0 (no machine-speed line). Not part of `cargo test`: it takes
# minutes and wants a quiet machine.
#
# How the cores are split (on a machine with two or more CPUs; the table gives each process's
# CPU seconds): vakt runs with `writer_cpu` = the last CPU, so its writer (and SQLite
# connection) has that CPU and vakt's connection threads the others; in the bursts vakt-load
# runs one worker thread per CPU on every CPU under SCHED_BATCH, so that it yields to vakt
# rather than preempt it, and at a fixed rate (latency, scale) one thread pinned to the first
# CPU; pysiaalarm (one thread) is pinned to the last CPU. PostgreSQL's processes are not pinned.
# benches/cpu_split.sh says why and how to choose another split.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
repeat=${2:-3}
pg_admin=${VAKT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release -q --bins
vakt=$PWD/target/release/vakt
load=$PWD/target/release/vakt-load
work=$(mktemp -d /tmp/vakt-bench.XXXXXX)
results=$work/results.jsonl
accounts=1000
key_ascii=0123456789abcdef
key_hex=30313233343536373839616263646566
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
source benches/cpu_split.sh

# How fast this machine is: the same VM kind has run at less than half its best speed on some
# days (and changed within an hour), and every figure here moves with it. The protocol core's
# criterion benchmark (one core, no I/O), before and after the runs, is the yardstick README's
# "Performance" table gives for a known day.
machine_speed() {
  "${pin_yardstick[@]}" cargo bench -q --bench codec -- 'dc09/plain ADM-CID' --warm-up-time 1 \
    --measurement-time 3 --noplot 2>/dev/null | sed -nE 's/.*thrpt: +\[[^ ]+ [^ ]+ ([0-9.]+ [KMG]?elem\/s).*/\1/p' | head -1
}
speed_before=
if [ "${VAKT_BENCH_CALIBRATE:-1}" != 0 ]; then
  echo "== machine speed (cargo bench --bench codec -- 'plain ADM-CID')" >&2
  speed_before=$(machine_speed)
  speed_before=${speed_before:-?}
fi

config() { # DB_URL PORT HTTP_PORT
  cat <<EOF
[database]
url = "$1"
[http]
bind = "127.0.0.1:$3"
[receiver]
max_connections = 200000
$([ "$writer_cpu" = none ] || echo "writer_cpu = $writer_cpu")
[[listener]]
kind = "tcp"
bind = "127.0.0.1:$2"
EOF
  "$load" --print-sites --accounts $accounts --key-hex $key_hex
}

start_vakt() { # DB_URL -> sets VPID
  config "$1" 17500 17580 > "$work/vakt.toml"
  RUST_LOG=warn "$vakt" serve --config "$work/vakt.toml" > "$work/vakt.out" 2> "$work/vakt.err" &
  VPID=$!
  for _ in $(seq 1 100); do grep -q ready "$work/vakt.out" 2>/dev/null && return; sleep 0.1; done
  echo "vakt did not start:"; cat "$work/vakt.err"; exit 1
}

stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

run() { # burst|paced LABEL PID ARGS...
  local kind=$1 label=$2 pid=$3; shift 3
  load_cmd "$kind" "$load" --json --label "$label" --pid "$pid" "$@" | tee -a "$results" > /dev/null
}

burst=(-c 1000 -a $accounts -w 1 -d "$secs")

echo "== vakt, SQLite" >&2
for i in $(seq 1 "$repeat"); do
  start_vakt "sqlite://$work/bench$i.db"
  run burst "burst, SQLite" $VPID --target 127.0.0.1:17500 "${burst[@]}"
  run burst "burst AES-128, SQLite" $VPID --target 127.0.0.1:17500 "${burst[@]}" --key-hex $key_hex
  stop $VPID
  rm -f "$work"/bench$i.db*
done
# Latency on a database of its own, not one still checkpointing the bursts' WAL.
start_vakt "sqlite://$work/latency.db"
run paced "latency at 10,000/s, SQLite" $VPID --target 127.0.0.1:17500 -c 1000 -a $accounts --rate 10000 -d "$secs"
stop $VPID

if psql "$pg_admin" -qAt -c 'select 1' > /dev/null 2>&1; then
  echo "== vakt, PostgreSQL" >&2
  db=vakt_bench_$$
  for i in $(seq 1 "$repeat"); do
    psql "$pg_admin" -q -c "CREATE DATABASE $db"
    start_vakt "${pg_admin%/*}/$db"
    run burst "burst, PostgreSQL" $VPID --target 127.0.0.1:17500 "${burst[@]}"
    stop $VPID
    psql "$pg_admin" -q -c "DROP DATABASE $db WITH (FORCE)"
  done
  psql "$pg_admin" -q -c "CREATE DATABASE $db"
  start_vakt "${pg_admin%/*}/$db"
  run paced "latency at 10,000/s, PostgreSQL" $VPID --target 127.0.0.1:17500 -c 1000 -a $accounts --rate 10000 -d "$secs"
  stop $VPID
  psql "$pg_admin" -q -c "DROP DATABASE $db WITH (FORCE)"
else
  echo "== PostgreSQL not reachable at $pg_admin: skipped" >&2
fi

echo "== scale: idle panels with heartbeats" >&2
limit=$(ulimit -n)
scale=${VAKT_BENCH_SCALE:-100000}
cluster=""
if [ "$scale" -gt $((limit - 1000)) ]; then
  echo "   open-file limit $limit: one process's run capped at $((limit - 1000)) connections;" \
    "all $scale follow over several nodes (benches/scale_cluster.sh) after pysiaalarm" >&2
  cluster=$scale
  scale=$((limit - 1000))
fi
start_vakt "sqlite://$work/scale.db"
rss0=$(awk '/VmRSS/ {print $2}' /proc/$VPID/status)
# Each panel: a NULL every 60 s; 1% of frames are events. 65 s: every panel heartbeats once.
run paced "scale: $scale panels, NULL every 60 s" $VPID --target 127.0.0.1:17500 -c "$scale" -a $accounts \
  --rate "$(python3 -c "print($scale/60)")" --mix null=99,cid=1 -d 65 --connect-concurrency 512
echo "{\"idle_rss_before_kib\": $rss0}" >> "$results"
stop $VPID

echo "== pysiaalarm (reference: stores nothing)" >&2
py=${VAKT_BENCH_PYSIA:-}
if [ -z "$py" ]; then
  [ -x target/bench-venv/bin/python ] || python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q --disable-pip-version-check pysiaalarm==3.2.2
  py=target/bench-venv/bin/python
fi
for mode in plain aes; do
  if [ $mode = plain ]; then args=(); pkey=(); else args=(--key-hex $key_hex); pkey=($key_ascii); fi
  "${pin_receiver[@]}" "$py" benches/pysia_server.py 17600 100000 $accounts "${pkey[@]}" > "$work/pysia.out" 2>&1 &
  PPID_=$!
  for _ in $(seq 1 100); do grep -q ready "$work/pysia.out" 2>/dev/null && break; sleep 0.1; done
  for i in $(seq 1 "$repeat"); do
    run burst "burst $mode, pysiaalarm" $PPID_ --target 127.0.0.1:17600 "${burst[@]}" "${args[@]}"
  done
  stop $PPID_
done

if [ -n "$speed_before" ]; then
  speed_after=$(machine_speed)
  echo "machine: plain ADM-CID verify + decode + ACK at $speed_before before the runs," \
    "$speed_after after, on one core (criterion medians; 4.17 Melem/s on the 2026-11-24" \
    "machine, README \"Performance\")"
  echo
fi

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
idle = next((r["idle_rss_before_kib"] for r in rows if "idle_rss_before_kib" in r), None)
runs = [r for r in rows if "label" in r]
# Runs repeated under one label: report the median run (by acks/s) and the spread.
groups = {}
for r in runs:
    groups.setdefault(r["label"], []).append(r)
med = {}
for label, rs in groups.items():
    rs.sort(key=lambda r: r["acks_per_sec"])
    m = dict(rs[len(rs) // 2])
    m["spread"] = (rs[0]["acks_per_sec"], rs[-1]["acks_per_sec"], len(rs))
    med[label] = m
print("| run | acks/s (median) | runs: min–max | not acked | p50 ms | p99 ms | p99.9 ms | max ms | receiver CPU s | load CPU s | receiver RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, r in med.items():
    l = r["latency_ms"]
    lo, hi, n = r["spread"]
    bad = sum(x["sent"] - x["acks"] for x in groups[label])
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
    spread = f"{n}: {lo:.0f}–{hi:.0f}" if n > 1 else "1"
    print(f"| {label} | {r['acks_per_sec']:.0f} | {spread} | {bad} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p99_9']:.2f} | {l['max']:.2f} | {f(r['receiver_cpu_secs'])} | {f(r['load_cpu_secs'])} | {f(r['receiver_peak_rss_mib'])} |")
runs = list(med.values())
by = {r["label"]: r for r in runs}
def ratio(a, b):
    if a in by and b in by and by[b]["acks_per_sec"] > 0:
        print(f"\n{a} / {b}: {by[a]['acks_per_sec'] / by[b]['acks_per_sec']:.1f}x")
ratio("burst, SQLite", "burst plain, pysiaalarm")
ratio("burst AES-128, SQLite", "burst aes, pysiaalarm")
scale = [r for r in runs if r["label"].startswith("scale")]
if scale and idle is not None:
    r = scale[0]
    per = (r["receiver_peak_rss_mib"] * 1024 - idle) / r["connections"]
    print(f"\nscale: {r['connections']} connections, peak RSS {r['receiver_peak_rss_mib']:.0f} MiB "
          f"(idle before {idle/1024:.0f} MiB, {per:.1f} KiB per connection), "
          f"heartbeats missed {r['null_timeouts']}, not acked {r['sent'] - r['acks']}")
PY

# Past one process's open-file limit: the same panels over several vakt nodes on one
# PostgreSQL database (vakt's multi-node deployment), one table row per node.
if [ -n "$cluster" ]; then
  if psql "$pg_admin" -qAt -c 'select 1' > /dev/null 2>&1; then
    echo
    echo "scale past the open-file limit, benches/scale_cluster.sh $cluster:"
    echo
    VAKT_BENCH_POSTGRES=$pg_admin benches/scale_cluster.sh "$cluster"
  else
    echo "== PostgreSQL not reachable: the $cluster-panel run over several nodes is skipped" >&2
  fi
fi
