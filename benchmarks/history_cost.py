"""What order history costs: the ordersync sync rate with ``order_versions`` on and off, alternated.

Same set-up as ``run.py`` (the Frontcore sandbox in its own process, each sync in its own process into a fresh
SQLite file); on and off runs alternate ``--rounds`` times so that load from elsewhere hits both alike; the best
runs (least disturbed) are compared, medians shown beside.
Usage: ``python benchmarks/history_cost.py [--orders 20000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from run import HERE, KEY, run, start_sandbox


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ordersync-history-"))
    proc, url = start_sandbox(args.orders, work / "frontcore.sqlite")
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for n in range(args.rounds):
            for mode in ("on", "off") if n % 2 == 0 else ("off", "on"):
                argv = [sys.executable, str(HERE / "ordersync_run.py"), url, KEY, str(work / f"{mode}{n}.db")]
                seconds[mode].append(run(mode, argv + (["--no-history"] if mode == "off" else []))["seconds"])
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.orders:,} Frontcore orders, {args.rounds} alternating rounds\n")
    print("| history | best s | orders/s (best) | median s | runs (s) |")
    print("|---|---:|---:|---:|---|")
    for mode, label in (("on", "on (default)"), ("off", "off")):
        best, runs = min(seconds[mode]), ", ".join(f"{s:.1f}" for s in seconds[mode])
        print(f"| {label} | {best:.1f} | {args.orders / best:,.0f} | {statistics.median(seconds[mode]):.1f} | {runs} |")
    ratio = min(seconds["off"]) / min(seconds["on"])
    print(f"\nwith history on, the best run reaches {ratio:.0%} of the rate with history off")


if __name__ == "__main__":
    main()
