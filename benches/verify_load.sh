#!/usr/bin/env bash
# Site-code checks do not slow the event path: ACK latency at a fixed event rate, first alone,
# then while operators hammer POST /api/sites/{account}/verify (each check is two argon2id
# hashes, about 27 ms of one core, run on a blocking thread, one at a time).
#
#   benches/verify_load.sh [SECONDS] [RATE] [CLIENTS]   (default 20 s, 10,000 events/s, 4)
#
# Prints the load generator's latency for both runs and what the verifications took.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rate=${2:-10000}
clients=${3:-4}
cargo build --release -q --bins
vakt=$PWD/target/release/vakt
load=$PWD/target/release/vakt-load
work=$(mktemp -d /tmp/vakt-verify.XXXXXX)
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
accounts=1000
{
  cat <<CONF
[database]
url = "sqlite://$work/vakt.db"
[http]
bind = "127.0.0.1:17680"
[[listener]]
kind = "tcp"
bind = "127.0.0.1:17600"
CONF
  "$load" --print-sites --accounts $accounts
} > "$work/vakt.toml"
RUST_LOG=warn "$vakt" serve --config "$work/vakt.toml" > "$work/vakt.out" 2> "$work/vakt.err" &
vpid=$!
for _ in $(seq 1 100); do grep -q ready "$work/vakt.out" 2>/dev/null && break; sleep 0.1; done
printf 'tulpan-2468\nblå häst 7913\n' | "$vakt" site set-codes 100000 --config "$work/vakt.toml" > /dev/null
token=$("$vakt" operator add bench --config "$work/vakt.toml")

cat > "$work/row.py" <<'PY'
import json, sys
r = json.loads(sys.stdin.read())
l = r["latency_ms"]
print(f"| {r['label']} | {r['acks_per_sec']:.0f} | {r['sent'] - r['acks']} | {l['p50']:.2f} "
      f"| {l['p99']:.2f} | {l['p99_9']:.2f} | {l['max']:.2f} |")
PY
latency() { # LABEL
  "$load" --json --label "$1" --pid $vpid --target 127.0.0.1:17600 -c 1000 -a $accounts \
    --rate "$rate" -d "$secs" | python3 "$work/row.py"
}

echo "| run | acks/s | not acked | p50 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
latency "$rate events/s alone"
for i in $(seq 1 "$clients"); do
  ( end=$((SECONDS + secs + 2))
    while [ $SECONDS -lt $end ]; do
      curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"code": "tulpan-2468"}' \
        http://127.0.0.1:17680/api/sites/100000/verify
    done > "$work/verify$i.txt" ) &
done
sleep 1
latency "$rate events/s, $clients clients verifying codes"
wait $(jobs -p | grep -v "^$vpid$") 2>/dev/null || true
cat "$work"/verify*.txt | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
ok = [float(t) * 1000 for c, t in rows if c == "200"]
ok.sort()
secs = float(sys.argv[1]) + 2
print(f"\nverifications: {len(ok)} answered 200 of {len(rows)} ({len(ok) / secs:.1f}/s); "
      f"latency median {ok[len(ok) // 2]:.0f} ms, p99 {ok[int(len(ok) * 0.99)]:.0f} ms")' "$secs"
kill -TERM $vpid; wait $vpid 2>/dev/null || true
