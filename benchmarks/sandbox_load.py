"""The sandbox under load: C concurrent clients read random 250-order pages of a Frontcore sandbox (its own
process, rate limit lifted), each client one request after another; then one client reads filtered pages of a
large sandbox. Prints the median and 90th percentile latency and the throughput.

    .venv/bin/python benchmarks/sandbox_load.py --orders 20000 --clients 50 --seconds 10
    .venv/bin/python benchmarks/sandbox_load.py --orders 1000000 --clients 0     # filtered pages only
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import start_sandbox  # noqa: E402
from targets import KEY  # noqa: E402

FILTERED = {
    "course_id (limit 250)": {"course_id": 22360, "limit": 250, "exported": "true"},
    "created_at one week (limit 250)": {"created_at_min": "2025-05-01", "created_at_max": "2025-05-08", "limit": 250,
                                        "exported": "true"},
    "updated_at_min last month (limit 250)": {"updated_at_min": "2026-10-25", "limit": 250, "exported": "true"},
    "newest 250": {"limit": 250, "exported": "true"},
    "page 40, limit 250": {"limit": 250, "page": 40, "exported": "true"},
}


class Connection:
    """A minimal keep-alive HTTP/1.1 client (asyncio streams): the load generator shares the machine with the
    sandbox, so it must cost as little CPU per answer as possible (httpx costs about 6 ms per 850 kB page)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        assert self.reader is not None
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {KEY}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)


async def client_loop(url: str, pages: int, until: float, times: list[float], seed: int) -> None:
    rng = random.Random(seed)
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    connection = Connection(host, int(port))
    while time.perf_counter() < until:
        target = f"/v2/orders?limit=250&exported=true&page={rng.randint(1, pages)}"
        started = time.perf_counter()
        status, body = await connection.get(target)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, body[:200]


async def load(url: str, orders: int, clients: int, seconds: float) -> None:
    times: list[float] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(url, max(1, orders // 250), until, times, n) for n in range(clients)))
    wall = time.perf_counter() - started
    times.sort()
    print(f"| {clients} clients, random 250-order pages | {statistics.median(times):.1f} | "
          f"{times[int(len(times) * 0.9)]:.1f} | {len(times) / wall:.0f} |")


def filtered(url: str) -> None:
    with httpx.Client(base_url=f"{url}/v2", headers={"X-API-Key": KEY}, timeout=120) as client:
        for name, params in FILTERED.items():
            times, count = [], 0
            for _ in range(7):
                started = time.perf_counter()
                response = client.get("/orders", params=params)  # type: ignore[arg-type]
                times.append((time.perf_counter() - started) * 1000)
                count = len(response.json())
            print(f"| {name} | {statistics.median(times):.1f} | {count} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--data", help="keep the sandbox's data in this file (generation of 1M orders is slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data = Path(args.data) if args.data else Path(work) / "frontcore.sqlite"
        proc, url = start_sandbox(args.orders, data)
        try:
            if args.clients:
                print(f"\nFrontcore sandbox, {args.orders:,} orders, {args.seconds:g} s of load\n")
                print("| load | median ms | p90 ms | requests/s |\n|---|---:|---:|---:|")
                asyncio.run(load(url, args.orders, args.clients, args.seconds))
            print(f"\nFrontcore sandbox, {args.orders:,} orders, one client: median of 7\n")
            print("| request | ms | records |\n|---|---:|---:|")
            filtered(url)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
