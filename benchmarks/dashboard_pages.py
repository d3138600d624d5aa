"""Every dashboard page against a database of 1,000,000 orders: time to answer, in-process (no network).

Builds (once, then reuses) a SQLite database through ``Store`` (so with the store's schema and indexes): orders
over three years from four sources, one line and one payment each, a first version each and a second for 5%,
2,000 runs. Then requests each page ``--repeat`` times and prints the median and the slowest answer.
Usage: ``python benchmarks/dashboard_pages.py [--orders 1000000] [--db PATH] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from ordersync.dashboard import create_app
from ordersync.store import open_store

SOURCES = (("courses", "frontcore", "NOK"), ("vouchers", "eguma", "CHF"), ("shop", "firespring", "USD"),
           ("tickets", "prio", "EUR"))
STATUSES = ("paid", "paid", "paid", "pending", "cancelled", "refunded")
START = datetime(2023, 12, 1, tzinfo=UTC)
LIFECYCLE = {"paid": "paid", "pending": "pending", "cancelled": "cancelled"}  # "refunded": a word of no lifecycle
NAMES = ("Kari Nordmann", "Ola Hansen", "Ingrid Berg", "Lars Johansen", "Sofie Lie", "Jonas Dahl")
ORDER_COLUMNS = ("source, order_id, api, order_number, status, currency, total_minor, discount_minor, tax_minor, "
                 "is_paid, customer_id, customer_name, customer_email, created_at, updated_at, synced_at, raw, "
                 "lifecycle, adjustment_minor")


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(path: Path, count: int) -> None:
    open_store(f"sqlite:///{path}").close()  # schema and indexes as the store makes them
    rng = random.Random(1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    synced = iso(datetime(2026, 11, 1, tzinfo=UTC))
    span = 3 * 365 * 86400
    for start in range(0, count, 50_000):
        orders, lines, pays, versions = [], [], [], []
        for i in range(start, min(start + 50_000, count)):
            source, api, currency = SOURCES[i % 4]
            created = iso(START + timedelta(seconds=span * i // count + rng.randrange(600)))
            status = rng.choice(STATUSES)
            total = rng.randrange(500, 500_000)
            raw = f'{{"id": {i}, "status": "{status}", "total": {total}, "lines": [{{"name": "Item {i % 997}"}}]}}'
            email = f"customer{rng.randrange(200_000)}@example.org"
            orders.append((source, str(i), api, f"N{i}", status, currency, total, 0, 0, status == "paid", "c",
                           rng.choice(NAMES), email, created, created, synced, raw, LIFECYCLE.get(status), 0))
            lines.append((source, str(i), 1, "l1", f"p{i % 997}", f"Item {i % 997}", 1, total, total, currency, "{}"))
            pays.append((source, str(i), 1, "card", total, currency, "{}"))
            paid = status == "paid"
            versions.append((source, str(i), 1, created, None, status, paid, total, currency, created, None))
        conn.executemany(f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (" + ",".join("?" * 19) + ")", orders)
        conn.executemany("INSERT INTO order_lines VALUES (" + ",".join("?" * 11) + ")", lines)
        conn.executemany("INSERT INTO payments VALUES (" + ",".join("?" * 7) + ")", pays)
        conn.executemany("INSERT INTO order_versions VALUES (" + ",".join("?" * 11) + ")", versions)
        conn.commit()
    changed = conn.execute("SELECT source, order_id, synced_at, raw FROM orders WHERE abs(random()) % 20 = 0"
                           ).fetchall()
    conn.executemany("UPDATE order_versions SET valid_to = ?, raw = ? WHERE source = ? AND order_id = ? "
                     "AND version_no = 1", [(synced, raw, s, o) for s, o, _, raw in changed])
    conn.executemany("INSERT INTO order_versions VALUES (?, ?, 2, ?, NULL, 'refunded', 0, 0, 'NOK', ?, NULL)",
                     [(s, o, synced, synced) for s, o, _, _ in changed])
    runs = []
    for n in range(2000):
        source = SOURCES[n % 4][0]
        began = START + timedelta(hours=n)
        runs.append((source, "orders", iso(began), iso(began + timedelta(seconds=rng.randrange(5, 90))), "ok",
                     rng.randrange(100), rng.randrange(50), rng.randrange(500), rng.randrange(1, 20), None))
    conn.executemany("INSERT INTO _ordersync_runs (source, stream, started_at, finished_at, status, new_rows, "
                     "changed_rows, unchanged_rows, requests, error) VALUES (?,?,?,?,?,?,?,?,?,?)", runs)
    conn.executemany("INSERT INTO _ordersync_state VALUES (?, 'orders', ?, ?, ?)",
                     [(s, api, '{"max_id": 1}', synced) for s, api, _ in SOURCES])
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def measure(url: str, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    app = create_app(url)
    timings: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for name, path in paths.items():
            timings[name] = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
                assert not path.startswith("/orders") or "No orders match" not in response.text, path
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("build/dashboard-bench.db"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    if args.db.exists():
        with sqlite3.connect(args.db) as conn:
            have = conn.execute("SELECT count(*) FROM order_versions WHERE version_no = 1").fetchone()[0]
            complete = conn.execute("SELECT count(*) FROM _ordersync_runs").fetchone()[0] > 0
        if have != args.orders or not complete:
            args.db.unlink()
    if not args.db.exists():
        started = time.perf_counter()
        build(args.db, args.orders)
        print(f"built {args.db} with {args.orders:,} orders in {time.perf_counter() - started:.0f} s")
    with sqlite3.connect(args.db) as conn:
        middle = conn.execute("SELECT created_at, source, order_id FROM orders ORDER BY created_at DESC, source DESC, "
                              "order_id DESC LIMIT 1 OFFSET ?", (args.orders // 2,)).fetchone()
        email, number = conn.execute("SELECT customer_email, order_number FROM orders WHERE order_id = ?",
                                     (str(args.orders // 3),)).fetchone()
        changed = conn.execute("SELECT source, order_id FROM order_versions WHERE version_no = 2 LIMIT 1").fetchone()
    import base64

    import orjson

    deep = base64.urlsafe_b64encode(orjson.dumps([middle[0].replace("Z", ""), middle[1], middle[2]])).decode()
    paths = {
        "status + 90-day chart (default)": "/",
        "status + 92-day chart (the longest)": "/?from=2025-01-01&to=2025-04-02",
        "orders, first page": "/orders",
        "orders, page in the middle (keyset)": f"/orders?after={deep}",
        "orders, e-mail search": f"/orders?q={email}",
        "orders, number search": f"/orders?q={number}",
        "orders, source + status + dates": "/orders?source=shop&status=refunded&from=2025-03-01&to=2025-03-31",
        "orders, a part of a name": "/orders?q=ingrid",
        "orders, lifecycle cancelled": "/orders?lifecycle=cancelled",
        "orders as CSV, one source, one month": "/orders.csv?source=shop&from=2025-03-01&to=2025-03-31",
        "order page with history": f"/orders/{changed[0]}/{changed[1]}",
        "run history (200 runs)": "/runs",
    }
    timings = asyncio.run(measure(f"sqlite:///{args.db}", paths, args.repeat))
    print(f"\n{args.orders:,} orders, {args.repeat} requests per page, in-process (ms)\n")
    print("| page | median ms | slowest ms |")
    print("|---|---:|---:|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.0f} | {max(values):.0f} |")
    slow = [name for name, values in timings.items() if statistics.median(values) >= 200]
    print("\nevery page under 200 ms" if not slow else f"\nover 200 ms: {', '.join(slow)}")


if __name__ == "__main__":
    main()
