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
from run import KEY, start_sandbox  # noqa: E402

FILTERED = {
    "course_id (limit 250)": {"course_id": 22360, "limit": 250, "exported": "true"},
    "created_at one week (limit 250)": {"created_at_min": "2025-05-01", "created_at_max": "2025-05-08", "limit": 250,
                                        "exported": "true"},
    "updated_at_min last month (limit 250)": {"updated_at_min": "2026-10-25", "limit": 250, "exported": "true"},
    "since_id, the last 250": {"limit": 250, "exported": "true"},
    "page 100, limit 250": {"limit": 250, "page": 100, "exported": "true"},
}


async def client_loop(client: httpx.AsyncClient, pages: int, until: float, times: list[float], seed: int) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < until:
        params = {"limit": 250, "page": rng.randint(1, pages), "exported": "true"}
        started = time.perf_counter()
        response = await client.get("/v2/orders", params=params)
        await response.aread()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:200]


async def load(url: str, orders: int, clients: int, seconds: float) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, limits=limits, timeout=120) as client:
        await client.get("/v2/orders", params={"limit": 250})  # warm up
        times: list[float] = []
        until = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, max(1, orders // 250), until, times, n) for n in range(clients)))
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
                response = client.get("/orders", params=params)
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
