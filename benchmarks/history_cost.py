"""What order history costs: the ordersync sync rate with ``order_versions`` on and off, alternated.

Same set-up as ``run.py`` (the Frontcore sandbox in its own process, each sync in its own process into a fresh
SQLite file); on and off runs alternate ``--rounds`` times so that load from elsewhere hits both alike. Two
figures: the best wall time of each, and the median CPU time (user + system) of the sync process, which load from
other processes on the machine disturbs far less than wall time.
Usage: ``python benchmarks/history_cost.py [--orders 20000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HERE, start_sandbox
from targets import KEY


def run(name: str, argv: list[str]) -> dict[str, float]:
    """One sync in a child process; its wall time."""
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return {"seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ordersync-history-"))
    proc, url = start_sandbox(args.orders, work / "frontcore.sqlite")
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for n in range(args.rounds):
            for mode in ("on", "off") if n % 2 == 0 else ("off", "on"):
                argv = [sys.executable, str(HERE / "ordersync_run.py"), url, KEY, str(work / f"{mode}{n}.db")]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds[mode].append(run(mode, argv + (["--no-history"] if mode == "off" else []))["seconds"])
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[mode].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.orders:,} Frontcore orders, {args.rounds} alternating rounds\n")
    print("| history | best wall s | orders/s (best) | median CPU s | wall of each run (s) |")
    print("|---|---:|---:|---:|---|")
    for mode, label in (("on", "on (default)"), ("off", "off")):
        best, runs = min(seconds[mode]), ", ".join(f"{s:.1f}" for s in seconds[mode])
        print(f"| {label} | {best:.1f} | {args.orders / best:,.0f} | {statistics.median(cpu[mode]):.1f} | {runs} |")
    wall = min(seconds["off"]) / min(seconds["on"])
    extra_cpu = statistics.median(cpu["on"]) / statistics.median(cpu["off"]) - 1
    print(f"\nwith history on: {wall:.0%} of the best rate with history off; {extra_cpu:+.0%} CPU time")


if __name__ == "__main__":
    main()
