"""Drive dc09-spt (a real DC-09 transmitter from PyPI) against a vakt gateway.

    python send.py HOST PORT ACCOUNT tcp|udp COUNT TIMEOUT_SECS [FIRST_ZONE]

Queues COUNT events, alternating ADM-CID and SIA-DCS (event i: zone FIRST_ZONE + i - 1), waits until dc09-spt
reports every one sent (acknowledged) or TIMEOUT_SECS pass, and prints a JSON line with
dc09-spt's own state. Exit 0 when all were acknowledged, 3 otherwise.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the Crypto stand-in
from dc09_spt import dc09_spt  # noqa: E402

host, port, account, kind, count, timeout = sys.argv[1:7]
port, count, timeout = int(port), int(count), float(timeout)
first = int(sys.argv[7]) if len(sys.argv) > 7 else 1

spt = dc09_spt.dc09_spt(account, line=0)
spt.set_path("main", "primary", host, port, type=kind.upper())
for i in range(1, count + 1):
    zone = first + i - 1
    if i % 2:
        spt.send_msg("ADM-CID", {"account": account, "code": "131", "q": 1, "area": 1, "zone": zone})
    else:
        # FA: dc09-spt writes the zone for fire codes (it treats BA as area-addressed).
        spt.send_msg("SIA-DCS", {"account": account, "code": "FA", "area": 1, "zone": zone})
deadline = time.time() + timeout
while time.time() < deadline and (spt.notSent() > 0 or spt.state().get("send active")):
    time.sleep(0.1)
state = spt.state()
print(json.dumps({"queued": spt.notSent(), "state": state}), flush=True)
os._exit(0 if spt.notSent() == 0 and not state.get("send active") else 3)
