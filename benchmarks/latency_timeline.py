"""Where the latency scenario's time goes: one ordersync run against the fast server with 100 ms per answer, seen
from the server.

``run.py``'s latency scenario gives one figure per API (the bound over the wall time). This script shows why it is
what it is, from the server's log of every exchange (when each request came and when its answer left, per
connection): when the first request came (start-up), how many requests were in flight on average, how long the
client took from an answer to its next request on that connection (its own work, in a round trip of 100 ms), and
the tail from the last answer to the end of the process (the last page stored, the run summary, shutting down).

    .venv/bin/python benchmarks/latency_timeline.py prio --concurrency 4 --orders 20000 [--first 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fastserver import render  # noqa: E402
from run import APIS, CACHE, UNLIMITED, fast_server, run_ordersync, server_stats, subset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api", choices=APIS)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--first", type=int, default=0, help="also list the first N exchanges")
    args = parser.parse_args()
    records = subset(render(args.api, 100000, CACHE), args.orders)
    with fast_server(args.api, records, "--latency-ms", "100", "--log") as root, \
            tempfile.TemporaryDirectory(prefix="ordersync-bench-") as tmp:
        result, _ = run_ordersync(args.api, root, Path(tmp), f"sqlite:///{tmp}/o.db", concurrency=args.concurrency,
                                  **UNLIMITED)
        exchanges = sorted(server_stats(root)["exchanges"])
    if result.code != 0 or not exchanges:
        raise SystemExit(f"the run failed: {result.stderr.strip()[-300:]}")
    launched = result.launched
    last_answer = max(left for _, left, _ in exchanges) - launched
    events = sorted([(came, 1) for came, _, _ in exchanges] + [(left, -1) for _, left, _ in exchanges])
    in_flight = area = 0.0
    previous = events[0][0]
    for moment, change in events:
        area += in_flight * (moment - previous)
        previous, in_flight = moment, in_flight + change
    span = events[-1][0] - events[0][0]
    by_connection: dict[int, list[tuple[float, float]]] = {}
    for came, left, connection in exchanges:
        by_connection.setdefault(connection, []).append((came, left))
    gaps = sorted(following[0] - earlier[1] for pairs in by_connection.values()
                  for earlier, following in zip(sorted(pairs), sorted(pairs)[1:], strict=False))
    print("| API | concurrency | requests | wall s | first request s | last answer s | tail s | mean in flight | "
          "answer -> next request on its connection, median / p90 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.api} | {args.concurrency} | {len(exchanges)} | {result.wall:.2f} | "
          f"{exchanges[0][0] - launched:.2f} | {last_answer:.2f} | {result.wall - last_answer:.2f} | "
          f"{area / span:.2f} | {statistics.median(gaps) * 1000:.1f} / {gaps[int(len(gaps) * 0.9)] * 1000:.1f} |")
    for came, left, connection in exchanges[:args.first]:
        print(f"request at {came - launched:.3f} s, answered at {left - launched:.3f} s, connection {connection % 997}")


if __name__ == "__main__":
    main()
