#!/usr/bin/env bash
# Bounded fuzzing of the protocol parsers, seeded from ../shared/vectors.
#   protocol/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); it wants nightly features, which
# RUSTC_BOOTSTRAP=1 enables on the stable toolchain. A crash leaves its input in
# protocol/fuzz/artifacts/<target>/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shared=${VAKT_SHARED:-../../../shared}
python3 - "$shared/vectors" <<'PY'
import json, os, sys, hashlib
vec = sys.argv[1]
def put(target, data):
    d = os.path.join("corpus", target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb").write(data)
for name in sorted(os.listdir(vec)):
    if not name.endswith(".json"): continue
    doc = json.load(open(os.path.join(vec, name)))
    raws = [v["raw"] for v in doc.get("vectors", [])]
    raws += [s["raw"] for sc in doc.get("scenarios", []) for s in sc["steps"]]
    for raw in raws:
        b = raw.encode("latin-1")
        if name.startswith("dc09"):
            for flags in (0, 1, 2, 4, 16 | 32):
                put("dc09_frame", bytes([flags]) + b)
            if b'"' in b and b.endswith(b"\r"):
                body = b[b.index(b'"'):-1]
                for flags in (64, 64 | 16, 64 | 16 | 32):
                    put("dc09_frame", bytes([flags]) + body)
            if b"[" in b:
                put("sia_dcs", b[b.index(b"[") + 1:b.rindex(b"]")] if b"]" in b else b)
        elif name.startswith("contact_id"):
            put("contact_id", b)
        else:
            for flags in (0, 1, 8, 40):
                put("serial_codec", bytes([flags]) + b)
PY
for target in dc09_frame sia_dcs serial_codec contact_id; do
  echo "== $target: ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$secs" -max_len=4200 -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|panicked|Done)" || true
  if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "CRASH in $target: see protocol/fuzz/artifacts/$target/"; exit 1
  fi
done
