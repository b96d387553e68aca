"""pysiaalarm as the reference receiver for benches/gateway.sh.

    python pysia_server.py PORT ACCOUNT_BASE ACCOUNTS [KEY_ASCII]

Runs pysiaalarm's asyncio TCP server for accounts ACCOUNT_BASE .. +ACCOUNTS-1 (with the AES
key, used byte for byte as pysiaalarm does, when given) and a handler that only counts. It
stores nothing and answers before its handler runs: the cheapest receiver pysiaalarm can be.
Prints "ready" when listening and the count on SIGTERM/SIGINT.
"""
import asyncio
import signal
import sys

from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient, CommunicationsProtocol

port, base, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else None
count = 0


async def handler(event):
    global count
    count += 1


async def main():
    accounts = [SIAAccount(str(base + i), key) for i in range(n)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with SIAClient("127.0.0.1", port, accounts, function=handler,
                         protocol=CommunicationsProtocol.TCP):
        print("ready", flush=True)
        await stop.wait()
    print(f"events {count}", flush=True)


asyncio.run(main())
