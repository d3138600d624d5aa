"""The latency scenario's bound, reached by the barest client: how close can any client come to it?

``run.py``'s latency scenario compares ordersync with ``start-up + ceil(requests / concurrency) x 0.1 s``. This
script measures what that bound leaves for a client's own work: ``concurrency`` httpx workers read Firespring's
pages from the same pre-rendered server with the same 100 ms per answer, parse each with orjson and store
nothing. Their wall time against ``ceil(pages / concurrency) x 0.1 s`` is the ratio no client can beat.

    .venv/bin/python benchmarks/bare_latency.py --orders 20000 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fastserver import render  # noqa: E402
from run import CACHE, fast_server, subset  # noqa: E402
from targets import FIRESPRING_PAGE, FIRESPRING_QUERY, FIRESPRING_WEBSITE, KEY  # noqa: E402


async def read_all(root: str, pages: int, concurrency: int) -> tuple[float, int]:
    """Seconds to read every page with ``concurrency`` workers (connections opened on the way), and the orders
    read."""
    async with httpx.AsyncClient(base_url=root, auth=(KEY, ""), headers={"Firespring-Api-Version": "1"},
                                 limits=httpx.Limits(max_connections=concurrency), timeout=60) as client:
        todo = list(range(1, pages + 1))
        orders = 0

        async def worker() -> None:
            nonlocal orders
            while todo:
                page = todo.pop(0)
                answer = await client.get(f"/websites/{FIRESPRING_WEBSITE}/orders",
                                          params={**FIRESPRING_QUERY, "page": page})
                answer.raise_for_status()
                orders += len(orjson.loads(answer.content)["data"])

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started, orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    records = subset(render("firespring", 100000, CACHE), args.orders)
    pages = math.ceil(args.orders / FIRESPRING_PAGE)
    bound = math.ceil(pages / args.concurrency) * 0.1
    print("| concurrency | pages | wall s | bound s (ceil(pages / concurrency) x 0.1) | bound / wall |")
    print("|---:|---:|---:|---:|---:|")
    with fast_server("firespring", records, "--latency-ms", "100") as root:
        for _ in range(args.runs):
            wall, orders = asyncio.run(read_all(root, pages, args.concurrency))
            assert orders == args.orders, f"read {orders} orders, expected {args.orders}"
            print(f"| {args.concurrency} | {pages} | {wall:.2f} | {bound:.2f} | {bound / wall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
