#!/usr/bin/env bash
# Instructions per frame on vakt's connection thread, counted by callgrind: what a change to the
# per-frame path (decode, rows, duplicate identity, answer, timers) saves, in a figure that does
# not move with the VM's speed or with what else runs (the wall-clock A/B in ab_burst.sh does).
#
#   benches/conn_instructions.sh [BIN...]    (default: target/release/vakt)
#
# Each binary serves a fresh SQLite database under `valgrind --tool=callgrind` while vakt-load
# sends RATE frames/s (default 300: slow enough for vakt under valgrind to keep up) from 200
# panels for SECONDS (default 10), the usual cid/sia mix over 1,000 accounts. Printed per
# acknowledged frame: the connection tasks (`TrackedFuture::poll`, inclusive: reading, the
# pipeline, waiting for the writer, writing the answer), `Pipeline::dc09` within them, and the
# whole tokio worker threads (also the scheduler, the I/O driver and the site cache's refreshes).
# Under valgrind SHA-256 (the duplicate identity) runs its portable code, ~3,400 instructions a
# frame that SHA-NI does in a fraction.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 1; }
rate=${RATE:-300} secs=${SECONDS_RUN:-10}
cargo build --release -q --bins
load=$PWD/target/release/vakt-load
[ $# -gt 0 ] || set -- "$PWD/target/release/vakt"
work=$(mktemp -d /tmp/vakt-cg.XXXXXX)
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
# Inclusive instructions of the first function matching PATTERN in a callgrind file (0: none).
inclusive() {
  callgrind_annotate --inclusive=yes "$1" 2> /dev/null |
    awk -v p="$2" 'index($0, p) && !n {gsub(",", "", $1); n = $1} END {print n + 0}'
}
for bin in "$@"; do
  rm -rf "$work"/*
  {
    printf '[database]\nurl = "sqlite://%s/b.db"\n[http]\nbind = "127.0.0.1:17684"\n' "$work"
    printf '[[listener]]\nkind = "tcp"\nbind = "127.0.0.1:17504"\n'
    "$load" --print-sites --accounts 1000
  } > "$work/v.toml"
  RUST_LOG=warn valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$work/cg.%p" "$bin" serve --config "$work/v.toml" \
    > "$work/out" 2> "$work/err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q ready "$work/out" 2> /dev/null && break; sleep 0.2; done
  grep -q ready "$work/out" || { echo "vakt did not start:" >&2; cat "$work/err" >&2; exit 1; }
  acked=$("$load" --target 127.0.0.1:17504 -c 200 -a 1000 -w 1 --rate "$rate" -d "$secs" |
    sed -nE 's/.*acked ([0-9]+) in.*/\1/p')
  sleep 2
  kill -TERM "$pid"; wait "$pid" || true
  # Summed over the threads whose profiles hold connection tasks (the tokio workers).
  conn=0 dc09=0 thread=0
  for f in "$work"/cg.*-*; do
    c=$(inclusive "$f" 'TrackedFuture<F> as core::future::future::Future>::poll')
    [ "$c" -gt 0 ] || continue
    conn=$((conn + c))
    dc09=$((dc09 + $(inclusive "$f" 'Pipeline::dc09::{{closure}}')))
    thread=$((thread + $(sed -nE 's/^summary: ([0-9]+)/\1/p' "$f")))
  done
  awk -v b="$bin" -v n="$acked" -v c="$conn" -v d="$dc09" -v t="$thread" 'BEGIN {
    printf "%s: %d frames acked; per frame: connection tasks %.0f, of which Pipeline::dc09 %.0f; tokio worker threads %.0f instructions\n",
      b, n, c / n, d / n, t / n }'
done
