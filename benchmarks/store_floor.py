"""What each destination's driver alone spends on what ordersync stores: a floor under any client that keeps the
same tables, one per destination (SQLite, PostgreSQL, DuckDB).

This script normalizes an API's cached records with ordersync's own normalizers (untimed), writes them page by page
through ordersync's store into one database (untimed), records every call that store makes to the driver (SQL and
parameters exactly as given to it, COPY rows, DuckDB's Arrow appends, transaction ends: :mod:`driver_floors`), and
replays each page's calls at once into a second database with a bare connection (``sqlite3``, ``psycopg``,
``duckdb``), with the store's settings and transaction boundaries (SQLite: and its checkpoints beside it). Only the
replay is timed, and the database's close (its last checkpoint): the time the database itself needs for the rows,
indexes, history and state of each page, with no Python of ordersync's in between.

    .venv/bin/python benchmarks/store_floor.py --orders 100000            # every API, SQLite and DuckDB
    .venv/bin/python benchmarks/store_floor.py --orders 20000 --apis eguma --destinations sqlite,duckdb,postgresql
    .venv/bin/python benchmarks/store_floor.py --orders 100000 --apis eguma --by-statement   # where the time goes

It prints, per API and destination, the replay's seconds and orders/s, and the fetch floor's figure from the same
cached data (``floor.py`` against ``fastserver.py``) with what half of that floor would leave for storing (issue 11).
``run.py`` reports the same floors beside each destination's sync (``--no-floors`` leaves them out).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from driver_floors import FLOORS, Floor  # noqa: E402
from fastserver import render  # noqa: E402
from harness import measure, throwaway_postgres  # noqa: E402
from run import CACHE, fast_server, subset  # noqa: E402
from targets import APIS  # noqa: E402

from ordersync.apis.eguma.settings import EgumaSettings  # noqa: E402
from ordersync.rejects import normalize_page  # noqa: E402

PAGE = {"frontcore": 250, "eguma": 500, "firespring": 100, "prio": 100}  # each API's page in the benchmark


@dataclass
class Figures:
    """One destination's floor for one API: orders written, wall and CPU seconds, CPU per kind of call."""

    orders: int
    wall: float
    cpu: float
    by_kind: dict[str, float]


def normalizer(api: str) -> Any:
    module = __import__(f"ordersync.apis.{api}.normalize", fromlist=["order_rows"])
    if api == "eguma":  # zone-less times, read in the zone a source has unless it says otherwise
        zone = EgumaSettings.model_fields["timezone"].default
        return functools.partial(module.order_rows, zone=ZoneInfo(zone))
    return module.order_rows


def pages(api: str, records: Path) -> Iterator[tuple[int, Any]]:
    """The API's records as the sync normalizes them, a benchmark page at a time: (records, rows)."""
    normalize = normalizer(api)
    lines = records.read_bytes().splitlines()
    for start in range(0, len(lines), PAGE[api]):
        page = [orjson.loads(line) for line in lines[start:start + PAGE[api]]]
        rows, _rejects = normalize_page(normalize, page, [orjson.dumps(r) for r in page])
        yield len(page), rows


def store_floor(api: str, records: Path, destination: str, server: str | None = None) -> Figures | None:
    """The bare driver's time for ordersync's writes of ``records`` into ``destination`` (None: not here)."""
    floor: Floor = FLOORS[destination]()
    with tempfile.TemporaryDirectory(prefix="ordersync-floor-") as tmp:
        store = floor.open(Path(tmp), server)
        if store is None:
            return None
        wall = cpu = 0.0
        orders = 0
        try:
            floor.take()
            store.open_batch("bench", "orders")  # as a sync's pass does (DuckDB writes several pages at once)
            for number, (count, rows) in enumerate(pages(api, records)):
                store.write_page("bench", api, "orders", rows, {"page": number})
                page_wall, page_cpu = floor.replay(floor.take())
                wall, cpu, orders = wall + page_wall, cpu + page_cpu, orders + count
            store.close_batch("bench", "orders")
            page_wall, page_cpu = floor.replay(floor.take())
            wall, cpu = wall + page_wall, cpu + page_cpu
        finally:
            store.close()
            started, before = time.perf_counter(), time.process_time()
            floor.close()
            wall, cpu = wall + time.perf_counter() - started, cpu + time.process_time() - before
    return Figures(orders, wall, cpu, dict(floor.by_kind))


def floor_table(api: str, records: Path, results: list[dict[str, Any]], server: str | None) -> list[str]:
    """Each destination's sync (from ``run.py``'s contenders) against its own bare-driver floor: the same pages
    fetched and parsed by the fetch floor (httpx + orjson) and the same rows written by the driver alone (this
    module), one after the other. A destination the run skipped is left out."""
    fetch = next(r["m"] for r in results if r["name"].startswith("floor"))
    out = [f"#### {api}: each destination against its bare-driver floor (fetch floor + driver alone)", "",
           "| destination | ordersync wall s | CPU s | driver alone: wall s | CPU s | floor (fetch + driver): wall s | "
           "CPU s | ordersync / floor (wall) | (CPU) |", "|---|" + "---:|" * 8]
    for r in results:
        destination = r["name"].removeprefix("ordersync -> ")
        if destination not in FLOORS or "m" not in r or r["m"].code != 0:
            continue
        figures = store_floor(api, records, destination, server)
        if figures is None:
            continue
        wall, cpu = fetch.wall + figures.wall, fetch.cpu + figures.cpu
        out.append(f"| {destination} | {r['m'].wall:.2f} | {r['m'].cpu:.2f} | {figures.wall:.2f} | {figures.cpu:.2f} | "
                   f"{wall:.2f} | {cpu:.2f} | {r['m'].wall / wall:.2f} | {r['m'].cpu / cpu:.2f} |")
    return [*out, ""]


def fetch_floor(api: str, records: Path) -> float:
    """The floor's orders/s (wall, with its start-up, as ``run.py`` measures it), best of three."""
    best = 0.0
    with fast_server(api, records) as root:
        for _ in range(3):
            result = measure([sys.executable, str(HERE / "floor.py"), api, root])
            best = max(best, orjson.loads(result.stdout.strip().splitlines()[-1])["rows"] / result.wall)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--apis", default=",".join(APIS))
    parser.add_argument("--destinations", default="sqlite,duckdb", help="comma-separated: sqlite, duckdb, "
                        "postgresql (a throwaway server)")
    parser.add_argument("--by-statement", action="store_true", help="also the CPU seconds of each kind of statement")
    args = parser.parse_args()
    apis, destinations = args.apis.split(","), args.destinations.split(",")
    if lacking := [api for api in apis if api not in PAGE]:
        parser.error(f"no page size in PAGE for {', '.join(lacking)}: add one (the API's page in the benchmark)")
    if unknown := [d for d in destinations if d not in FLOORS]:
        parser.error(f"unknown destination {', '.join(unknown)}: use {', '.join(FLOORS)}")
    print(f"| API | destination | orders | driver alone: wall s | CPU s | orders/s | fetch floor orders/s | half the "
          f"floor: s for {args.orders:,} orders | driver alone (CPU) / that |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with throwaway_postgres() if "postgresql" in destinations else contextlib.nullcontext(None) as server:
        for api in apis:
            records = subset(render(api, args.orders, CACHE), args.orders)
            floor = fetch_floor(api, records)
            for destination in destinations:
                figures = store_floor(api, records, destination, server)
                if figures is None:
                    print(f"| {api} | {destination} | not run: no server here | | | | | | |", flush=True)
                    continue
                allowed = figures.orders / (floor / 2)
                print(f"| {api} | {destination} | {figures.orders:,} | {figures.wall:.2f} | {figures.cpu:.2f} | "
                      f"{figures.orders / figures.wall:,.0f} | {floor:,.0f} | {allowed:.2f} | "
                      f"{figures.cpu / allowed:.2f} |", flush=True)
                if args.by_statement:
                    for kind, seconds in sorted(figures.by_kind.items(), key=lambda item: -item[1]):
                        print(f"    {seconds:6.2f} CPU s  {kind}")


if __name__ == "__main__":
    main()
