"""How fast a sandbox answers filtered pages out of a large data set (median of 5, one client, loopback).

    .venv/bin/python benchmarks/sandbox_latency.py --orders 100000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import start_sandbox  # noqa: E402
from targets import KEY  # noqa: E402

CASES: dict[str, dict[str, Any]] = {
    "page 1, limit 250 (exported hidden)": {"limit": 250},
    "page 200, limit 250": {"limit": 250, "page": 200, "exported": "true"},
    "course_id": {"course_id": 22360},
    "updated_at_min, last month": {"updated_at_min": "2026-10-22", "exported": "true"},
    "created_at one day": {"created_at_min": "2025-05-01", "created_at_max": "2025-05-02", "exported": "true"},
    "updated_at_min, limit 10": {"limit": 10, "updated_at_min": "2024-01-01"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100000)
    args = parser.parse_args()
    proc: subprocess.Popen[bytes]
    with tempfile.TemporaryDirectory() as work:
        proc, url = start_sandbox(args.orders, Path(work) / "frontcore.sqlite")
        try:
            print(f"\nFrontcore sandbox, {args.orders:,} orders: median of 5 answers\n")
            print("| request | ms | records |")
            print("|---|---:|---:|")
            with httpx.Client(base_url=f"{url}/v2", headers={"X-API-Key": KEY}, timeout=60) as client:
                last_id = 27000 + args.orders - 1  # the sandbox numbers orders from 27000
                cases = {**CASES, "since_id, the last 100": {"since_id": last_id - 100, "exported": "true"}}
                for name, params in cases.items():
                    times, count = [], 0
                    for _ in range(5):
                        started = time.perf_counter()
                        response = client.get("/orders", params=params)
                        times.append((time.perf_counter() - started) * 1000)
                        count = len(response.json())
                    print(f"| {name} | {statistics.median(times):.1f} | {count} |")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
