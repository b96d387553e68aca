"""A fake automation program for benches/output_catchup.sh: listens on TCP, ACKs every
Sur-Gard packet (DC4-terminated) at once, and when the packets stop for two seconds prints how
many event packets (heartbeats excluded) arrived and how fast, as JSON."""
import json
import socket
import sys
import time

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
conn.settimeout(2.0)
buf = b""
events = 0
first = last = None
while True:
    try:
        data = conn.recv(65536)
    except socket.timeout:
        break
    if not data:
        break
    buf += data
    while b"\x14" in buf:
        packet, buf = buf.split(b"\x14", 1)
        conn.sendall(b"\x06")
        if b"@" in packet and packet.startswith(b"1"):
            continue
        now = time.monotonic()
        first = first or now
        last = now
        events += 1
secs = (last - first) if first and last and last > first else 0.0
print(json.dumps({"packets": events, "seconds": round(secs, 3),
                  "packets_per_sec": round(events / secs) if secs else None}), flush=True)
