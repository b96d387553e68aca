#!/usr/bin/env bash
# How fast a Sur-Gard automation output catches up a backlog: vakt stores FRAMES frames while
# its automation is away, then a fake automation (benches/automation.py, ACKs at once) comes
# back and the rate at which vakt delivers the backlog is printed (each packet waits for its
# ACK, and the output's position is committed after every ACK before the next packet).
#
#   benches/output_catchup.sh [DB_URL] [FRAMES]     (default: a fresh SQLite file, 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${2:-20000}
cargo build --release -q --bins
vakt=$PWD/target/release/vakt
load=$PWD/target/release/vakt-load
work=$(mktemp -d /tmp/vakt-catchup.XXXXXX)
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
db=${1:-sqlite://$work/catchup.db}
{
  cat <<TOML
[database]
url = "$db"
[http]
bind = "127.0.0.1:17681"
[[listener]]
kind = "tcp"
bind = "127.0.0.1:17501"
[[output]]
name = "catchup-$$"
kind = "surgard"
connect = "127.0.0.1:17701"
heartbeat_secs = 3600
TOML
  "$load" --print-sites --accounts 100
} > "$work/vakt.toml"
RUST_LOG=error "$vakt" serve --config "$work/vakt.toml" > "$work/vakt.out" 2> "$work/vakt.err" &
for _ in $(seq 1 100); do grep -q ready "$work/vakt.out" 2>/dev/null && break; sleep 0.1; done
rate=5000
"$load" --target 127.0.0.1:17501 -c 100 -a 100 --rate $rate -d $((frames / rate)) --mix cid=50,sia=50 --require-all > "$work/load.txt"
echo "backlog: $(curl -s http://127.0.0.1:17681/metrics | grep '^vakt_output_backlog' | awk '{print $2}') events stored while the automation was away" >&2
python3 benches/automation.py 17701 > "$work/auto.out" &
APID=$!
wait $APID
cat "$work/auto.out" | tail -1
