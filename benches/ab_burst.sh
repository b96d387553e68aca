#!/usr/bin/env bash
# A/B of two vakt binaries on the SQLite burst (1,000 connections, W=1, closed loop, a fresh
# database per run), alternating A and B RUNS times: how a change moves durable throughput.
#
#   benches/ab_burst.sh A_BIN B_BIN [RUNS] [ZONES]
#
# With VAKT_AB_POSTGRES=postgres://user@host/admin_db each run gets a fresh PostgreSQL database
# created (and dropped) through that URL instead of a fresh SQLite file. With
# VAKT_AB_WRITER_CPU=N both binaries run with `writer_cpu = N`. vakt-load runs as in
# gateway.sh (benches/cpu_split.sh: a thread per CPU, on every CPU, SCHED_BATCH; its
# VAKT_BENCH_LOAD_* variables choose another, and VAKT_AB_LOAD_CPU=N is kept as the old
# VAKT_BENCH_LOAD_CPU=N VAKT_BENCH_LOAD_THREADS=1 VAKT_BENCH_LOAD_SCHED=normal: vakt-load pinned
# to CPU N). Each line also gives each CPU's idle share, the machine's context switches per
# acknowledged event (/proc/stat), vakt's CPU per acknowledged event by thread (the writer, its SQLite connection, the WAL fsync thread, the
# tokio workers) and, on PostgreSQL, the server's processes, which moves less with the VM than
# the rate does.
# e.g. the site-state cost: build the commit before it into another target dir
#   git worktree add /tmp/prev 6895c6c && (cd /tmp/prev && CARGO_TARGET_DIR=/tmp/prev-target cargo build --release --bins)
#   benches/ab_burst.sh /tmp/prev-target/release/vakt target/release/vakt 3 32
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 runs=${3:-3} zones=${4:-1000}
cargo build --release -q --bin vakt-load
load=$PWD/target/release/vakt-load
if [ -n "${VAKT_AB_LOAD_CPU:-}" ]; then
  export VAKT_BENCH_LOAD_CPU=$VAKT_AB_LOAD_CPU VAKT_BENCH_LOAD_THREADS=1 VAKT_BENCH_LOAD_SCHED=normal
fi
# Unset: vakt without `writer_cpu`, as before.
export VAKT_BENCH_WRITER_CPU=${VAKT_AB_WRITER_CPU:-none}
source benches/cpu_split.sh
# CPU ticks (utime + stime) of every PostgreSQL process now: the server's cost per event is
# the difference over a run (a backend that exits during the run takes its ticks with it).
pg_ticks() {
  local t=0 p
  for p in $(pgrep -x postgres); do
    set -- $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
# Per CPU, "cpuN:idle:total" ticks now (idle includes iowait): which core was the ceiling.
cpu_ticks() {
  awk '/^cpu[0-9]/ {t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%s:%d:%d ", $1, $5 + $6, t}' /proc/stat
}
run_one() { # BIN LABEL
  local work pid
  work=$(mktemp -d /tmp/vakt-ab.XXXXXX)
  local url="sqlite://$work/b.db" pgdb=""
  if [ -n "${VAKT_AB_POSTGRES:-}" ]; then
    pgdb=vakt_ab_$$
    psql "$VAKT_AB_POSTGRES" -qc "CREATE DATABASE $pgdb"
    url="${VAKT_AB_POSTGRES%/*}/$pgdb"
  fi
  {
    printf '[database]\nurl = "%s"\n[http]\nbind = "127.0.0.1:17683"\n' "$url"
    printf '[receiver]\nmax_connections = 20000\n'
    [ "$writer_cpu" = none ] || echo "writer_cpu = $writer_cpu"
    printf '[[listener]]\nkind = "tcp"\nbind = "127.0.0.1:17503"\n'
    "$load" --print-sites --accounts 1000
  } > "$work/v.toml"
  RUST_LOG=warn "$1" serve --config "$work/v.toml" > "$work/out" 2> "$work/err" &
  pid=$!
  for _ in $(seq 1 100); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.1; done
  # Never measure some other process on the port (a vakt left running, say).
  grep -q ready "$work/out" || { echo "vakt did not start:" >&2; cat "$work/err" >&2; exit 1; }
  local line acked pg_before
  [ -z "$pgdb" ] || pg_before=$(pg_ticks)
  local cpus_before switches_before
  cpus_before=$(cpu_ticks)
  switches_before=$(awk '/^ctxt/ {print $2}' /proc/stat)
  line=$(load_cmd burst "$load" --target 127.0.0.1:17503 -c 1000 -a 1000 -w 1 -d 10 --zones "$zones" |
    grep -E 'acks/s|^ack latency' | sed -E 's/ack latency ms: (p50 [0-9.]+) .*(p99 [0-9.]+) .*/\1 \2 ms/' | paste -sd';')
  local idle
  idle=$(paste -d' ' <(echo "$cpus_before" | tr ' ' '\n') <(cpu_ticks | tr ' ' '\n') |
    awk 'NF == 2 {split($1, a, ":"); split($2, b, ":"); printf "%s %.0f%%  ", a[1], 100 * (b[2] - a[2]) / (b[3] - a[3])}')
  acked=$(echo "$line" | sed -E 's/.*acked ([0-9]+).*/\1/')
  local switches
  switches=$(awk -v b="$switches_before" -v n="$acked" '/^ctxt/ {printf "%.2f", ($2 - b) / n}' /proc/stat)
  # vakt's CPU per acknowledged event, by thread name (utime + stime from /proc, in ticks).
  echo "$2: $line; idle: $idle; context switches/event: $switches; CPU µs/event: $(for t in /proc/$pid/task/*; do
      read -r name < "$t/comm"; set -- $(sed 's/.*) //' "$t/stat"); echo "$name $((${12} + ${13}))"
    done | awk -v n="$acked" -v hz="$(getconf CLK_TCK)" '{c[$1] += $2}
      END {for (k in c) if (c[k] > 0) printf "%s %.1f  ", k, c[k] / hz / n * 1e6}')$(
    [ -z "$pgdb" ] || echo " postgres $(( $(pg_ticks) - pg_before )) $acked" |
      awk -v hz="$(getconf CLK_TCK)" '{printf "%s %.1f", $1, $2 / hz / $3 * 1e6}')"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$work"
  if [ -n "$pgdb" ]; then psql "$VAKT_AB_POSTGRES" -qc "DROP DATABASE $pgdb WITH (FORCE)"; fi
}
for _ in $(seq 1 "$runs"); do
  run_one "$a" A
  run_one "$b" B
done
