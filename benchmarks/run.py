"""Benchmark: ordersync against dlt's rest_api source and a fetch-and-parse floor, in the same run.

Each contender runs in its own process against the same Frontcore sandbox (also its own process, data in a SQLite
file), so that none shares a GIL with the server. Figures: wall time, orders per second, peak RSS of the contender.

    .venv/bin/python benchmarks/run.py --orders 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(orders: int, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ordersync", "serve", "frontcore", "--port", str(port),
                             "--orders", str(orders), "--seed", "1", "--api-key", KEY, "--data", str(data),
                             "--no-rate-limit"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/openapi.json", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def run(name: str, argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one contender in a child process; wall time and the child's peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = result.stdout.strip().splitlines()
    rows = int(json.loads(out[-1])["rows"]) if out and out[-1].startswith("{") else -1
    return {"seconds": seconds, "rss_mb": max(peak, before) / 1024, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--skip-dlt", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ordersync-bench-"))
    proc, url = start_sandbox(args.orders, work / "frontcore.sqlite")
    try:
        contenders = {
            "floor (httpx + orjson, no storage)": [sys.executable, str(HERE / "floor.py"), url, KEY],
            "ordersync": [sys.executable, str(HERE / "ordersync_run.py"), url, KEY, str(work / "ordersync.db")],
            "ordersync, history off": [sys.executable, str(HERE / "ordersync_run.py"), url, KEY,
                                       str(work / "ordersync-nohistory.db"), "--no-history"],
        }
        if not args.skip_dlt:
            contenders["dlt rest_api -> duckdb"] = [sys.executable, str(HERE / "dlt_run.py"), url, KEY, str(work)]
        results = {name: run(name, argv) for name, argv in contenders.items()}
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\n{args.orders:,} Frontcore orders from the sandbox on 127.0.0.1 ({machine})\n")
    print("| contender | seconds | orders/s | peak RSS MB | rows | vs dlt |")
    print("|---|---:|---:|---:|---:|---:|")
    dlt = results.get("dlt rest_api -> duckdb")
    for name, r in results.items():
        rate = args.orders / r["seconds"]
        ratio = f"{dlt['seconds'] / r['seconds']:.1f}x" if dlt else "-"
        print(f"| {name} | {r['seconds']:.1f} | {rate:,.0f} | {r['rss_mb']:.0f} | {int(r['rows']):,} | {ratio} |")


if __name__ == "__main__":
    main()
