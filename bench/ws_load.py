"""WebSocket echo round trips: CONNS connections, each sending a 64-byte
message and waiting for its echo, for DURATION seconds. Prints
`round_trips p50_us p99_us`. (Python is the load generator here, so the
absolute rate is bounded by the client; compare targets in the same run.)"""

import asyncio
import sys
import time

import websockets


async def one(url, until, lat):
    async with websockets.connect(url, compression=None) as ws:
        msg = "x" * 64
        while time.perf_counter() < until:
            t = time.perf_counter()
            await ws.send(msg)
            await ws.recv()
            lat.append(time.perf_counter() - t)


async def main(url, conns, duration):
    lat = []
    until = time.perf_counter() + duration
    await asyncio.gather(*(one(url, until, lat) for _ in range(conns)))
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
    print(len(lat), round(p(0.5)), round(p(0.99)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
