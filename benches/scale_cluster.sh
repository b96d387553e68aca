#!/usr/bin/env bash
# Connection scale past one process's open-file limit: N vakt nodes against one PostgreSQL
# database (vakt's multi-node deployment), each with its own vakt-load holding its share of the
# panels. Every panel sends a NULL heartbeat every 60 s and 1% of frames are Contact ID events;
# each run lasts 65 s so every panel heartbeats at least once. Prints the nodes' summed peak RSS,
# per-connection memory and what was missed, as one Markdown table row per node plus a total.
#
#   benches/scale_cluster.sh [CONNECTIONS] [NODES]   (default 100000 over as few nodes as the
#                                                     open-file limit allows)
#
# Why nodes: a socket is a file descriptor, so one process holds at most `ulimit -Hn` panels
# (20,000 on the machines this was written on, where raising it needs CAP_SYS_RESOURCE, which
# is not granted). vakt-load has the same limit, hence one load generator per node.
# VAKT_BENCH_POSTGRES: an admin URL (default postgres://postgres@127.0.0.1:5432/test); a fresh
# database is created and dropped. Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-100000}
limit=$(ulimit -n)
per_max=$((limit - 1000))
nodes=${2:-$(((total + per_max - 1) / per_max))}
per=$(((total + nodes - 1) / nodes))
if [ "$per" -gt "$per_max" ]; then
  echo "$per connections per node exceed the open-file limit $limit; use more nodes" >&2
  exit 1
fi
pg_admin=${VAKT_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
psql "$pg_admin" -qAt -c 'select 1' > /dev/null || { echo "PostgreSQL not reachable at $pg_admin" >&2; exit 1; }
cargo build --release -q --bins
vakt=$PWD/target/release/vakt
load=$PWD/target/release/vakt-load
work=$(mktemp -d /tmp/vakt-scale.XXXXXX)
db=vakt_scale_$$
accounts=1000
cleanup() {
  pkill -P $$ || true
  sleep 1
  psql "$pg_admin" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$pg_admin" -q -c "CREATE DATABASE $db"
url="${pg_admin%/*}/$db"
# Each node's panels have accounts of their own (1,000 per node), all known to every node.
"$load" --print-sites --accounts $((accounts * nodes)) > "$work/sites.toml"
echo "== $total panels over $nodes vakt nodes ($per each) on one PostgreSQL" >&2

pids=()
for i in $(seq 0 $((nodes - 1))); do
  {
    printf '[database]\nurl = "%s"\n[http]\nbind = "127.0.0.1:%d"\n' "$url" $((17780 + i))
    printf '[receiver]\nmax_connections = %d\n' "$per_max"
    printf '[[listener]]\nkind = "tcp"\nbind = "127.0.0.1:%d"\n' $((17700 + i))
    cat "$work/sites.toml"
  } > "$work/node$i.toml"
  RUST_LOG=warn "$vakt" serve --config "$work/node$i.toml" > "$work/node$i.out" 2> "$work/node$i.err" &
  pids+=($!)
  # One at a time: the first migrates, the others find the schema in place.
  for _ in $(seq 1 200); do grep -q ready "$work/node$i.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$work/node$i.out" || { echo "node $i did not start:" >&2; cat "$work/node$i.err" >&2; exit 1; }
done
rss0=0
for p in "${pids[@]}"; do rss0=$((rss0 + $(awk '/VmRSS/ {print $2}' /proc/$p/status))); done

loads=()
for i in $(seq 0 $((nodes - 1))); do
  # Each generator has source addresses of its own, so none compete for ephemeral ports.
  "$load" --json --label "node $i" --pid "${pids[$i]}" --target 127.0.0.1:$((17700 + i)) \
    -c "$per" -a $accounts --account-base $((100000 + i * accounts)) --rate "$(python3 -c "print($per/60)")" --mix null=99,cid=1 -d 65 \
    --connect-concurrency 256 --sources "127.0.$((i + 1)).1-127.0.$((i + 1)).4" \
    > "$work/load$i.json" 2> "$work/load$i.err" &
  loads+=($!)
done
# vakt-load exits 3 when a frame went unanswered; the table below says which and fails too.
for p in "${loads[@]}"; do wait "$p" || true; done
for i in $(seq 0 $((nodes - 1))); do
  [ -s "$work/load$i.json" ] || { echo "load generator $i failed:" >&2; cat "$work/load$i.err" >&2; exit 1; }
done
errors=$(cat "$work"/node*.err | grep -c ERROR || true)

python3 - "$rss0" "$errors" "$work"/load*.json <<'PY'
import json, sys
rss0_kib, errors = int(sys.argv[1]), int(sys.argv[2])
rows = [json.loads(open(f).read()) for f in sys.argv[3:]]
print("| node | panels | NULL acked | NULL missed | events acked | not acked | connect errors | peak RSS | vakt CPU s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
tot = {k: 0 for k in ("c", "null_acks", "null_timeouts", "acks", "bad", "connect_errors", "peak", "cpu")}
for r in rows:
    bad = r["naks"] + r["duhs"] + r["wrong"] + r["timeouts"]
    vals = dict(c=r["connections"], null_acks=r["null_acks"], null_timeouts=r["null_timeouts"],
                acks=r["acks"] - r["null_acks"], bad=bad, connect_errors=r["connect_errors"],
                peak=r["receiver_peak_rss_mib"], cpu=r["receiver_cpu_secs"] or 0)
    for k in tot: tot[k] += vals[k]
    print(f"| {r['label']} | {vals['c']:,} | {vals['null_acks']:,} | {vals['null_timeouts']} | "
          f"{vals['acks']:,} | {bad} | {vals['connect_errors']} | {vals['peak']:.0f} MiB | {vals['cpu']:.1f} |")
print(f"| **all** | **{tot['c']:,}** | {tot['null_acks']:,} | **{tot['null_timeouts']}** | "
      f"{tot['acks']:,} | {tot['bad']} | {tot['connect_errors']} | **{tot['peak']:.0f} MiB** | {tot['cpu']:.1f} |")
per_conn = (tot["peak"] * 1024 - rss0_kib) / max(tot["c"], 1)
print(f"\nidle RSS of the {len(rows)} nodes before connecting: {rss0_kib / 1024:.0f} MiB; "
      f"{per_conn:.1f} KiB per connection above it; ERROR lines in the nodes' logs: {errors}")
ok = tot["null_timeouts"] == 0 and tot["bad"] == 0 and tot["connect_errors"] == 0
sys.exit(0 if ok else 1)
PY
