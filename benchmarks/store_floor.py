"""What SQLite alone spends on what ordersync stores: a floor under any client that keeps the same tables.

Issue 11 asks for half of the fetch floor (httpx + orjson, nothing stored). Whether that is possible at all
depends on what storing costs on its own, whoever issues the statements. This script normalizes an API's cached
records with ordersync's own normalizers (untimed), writes them page by page through ordersync's SQLite store
into one database (untimed), records every statement that store sends to ``sqlite3`` (SQL and parameters exactly
as given to the driver), and replays each page's statements at once into a second database with a bare
``sqlite3`` connection, with the same pragmas, transaction boundaries and checkpoints beside it. Only the replay
is timed: it is the time SQLite itself needs for the rows, indexes, history and state of each page, with no Python
of ours in between.

    .venv/bin/python benchmarks/store_floor.py --orders 100000            # every API
    .venv/bin/python benchmarks/store_floor.py --orders 20000 --apis eguma
    .venv/bin/python benchmarks/store_floor.py --orders 100000 --apis eguma --by-statement   # where SQLite's time goes

It prints, per API, the replay's seconds and orders/s next to the fetch floor's figure from the same cached data
(``floor.py`` against ``fastserver.py``), and what half of that floor would leave for storing.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fastserver import render  # noqa: E402
from harness import measure  # noqa: E402
from run import CACHE, fast_server, subset  # noqa: E402
from targets import APIS  # noqa: E402

from ordersync.apis.eguma.settings import EgumaSettings  # noqa: E402
from ordersync.rejects import normalize_page  # noqa: E402
from ordersync.store import open_store  # noqa: E402
from ordersync.store.checkpoint import Checkpointer  # noqa: E402
from ordersync.store.sqlite import CHECKPOINT_FRAMES, PRAGMAS  # noqa: E402

PAGE = {"frontcore": 250, "eguma": 500, "firespring": 100, "prio": 100}  # each API's page in the benchmark


def normalizer(api: str) -> Any:
    module = __import__(f"ordersync.apis.{api}.normalize", fromlist=["order_rows"])
    if api == "eguma":  # zone-less times, read in the zone a source has unless it says otherwise
        zone = EgumaSettings.model_fields["timezone"].default
        return functools.partial(module.order_rows, zone=ZoneInfo(zone))
    return module.order_rows


@dataclass
class Recorder:
    """The driver-level statements of the current page, in order, with the transaction's end."""

    statements: list[tuple[str, Any, bool]] = field(default_factory=list)

    def listen(self, engine: sa.Engine) -> None:
        @sa.event.listens_for(engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
            self.statements.append((sql, params, many))

        @sa.event.listens_for(engine, "commit")
        def _commit(_conn: Any) -> None:
            self.statements.append(("COMMIT", (), False))

    def take(self) -> list[tuple[str, Any, bool]]:
        taken, self.statements = self.statements, []
        return taken


BY_STATEMENT: collections.defaultdict[str, float] = collections.defaultdict(float)  # CPU s per kind (--by-statement)


def replay(db: sqlite3.Connection, statements: list[tuple[str, Any, bool]],
           checkpointer: Checkpointer) -> tuple[float, float]:
    """Wall and CPU seconds of one page's statements (CPU: steadier on a shared machine), and the checkpointer
    told of the commit as ordersync's store tells it (its CPU counts: it is this process's)."""
    started, cpu = time.perf_counter(), time.process_time()
    cursor = db.cursor()
    for sql, params, many in statements:
        before = time.process_time()
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
            cursor.fetchall()
        BY_STATEMENT[" ".join(sql.split()[:3])] += time.process_time() - before
    checkpointer.committed()
    return time.perf_counter() - started, time.process_time() - cpu


def store_floor(api: str, records: Path) -> tuple[int, float, float]:
    normalize = normalizer(api)
    lines = records.read_bytes().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/ordersync.db")
        recorder = Recorder()
        recorder.listen(store.engine)
        db = sqlite3.connect(f"{tmp}/floor.db", isolation_level=None)
        for pragma in PRAGMAS:
            db.execute(f"PRAGMA {pragma}")
        with sqlite3.connect(f"{tmp}/ordersync.db") as schema:  # the same tables and indexes
            for (sql,) in schema.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
                db.execute(sql)
            for table in ("_ordersync_schema",):
                db.executemany(f"INSERT INTO {table} VALUES (?)", schema.execute(f"SELECT * FROM {table}"))
        recorder.take()
        checkpointer = Checkpointer(Path(f"{tmp}/floor.db"), PRAGMAS, CHECKPOINT_FRAMES)
        wall = cpu = 0.0
        orders = 0
        for start in range(0, len(lines), PAGE[api]):
            page = [orjson.loads(line) for line in lines[start:start + PAGE[api]]]
            rows, _rejects = normalize_page(normalize, page, [orjson.dumps(r) for r in page])
            store.write_page("bench", api, "orders", rows, {"page": start})
            page_wall, page_cpu = replay(db, recorder.take(), checkpointer)
            wall += page_wall
            cpu += page_cpu
            orders += len(page)
        checkpointer.close()
        db.close()
        store.close()
    return orders, wall, cpu


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
    parser.add_argument("--by-statement", action="store_true", help="also the CPU seconds of each kind of statement")
    args = parser.parse_args()
    if lacking := [api for api in args.apis.split(",") if api not in PAGE]:
        parser.error(f"no page size in PAGE for {', '.join(lacking)}: add one (the API's page in the benchmark)")
    print(f"| API | orders | SQLite alone: wall s | CPU s | orders/s | fetch floor orders/s | half the floor: s for "
          f"{args.orders:,} orders | SQLite alone (CPU) / that |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for api in args.apis.split(","):
        records = subset(render(api, 100000, CACHE), args.orders)
        orders, wall, cpu = store_floor(api, records)
        floor = fetch_floor(api, records)
        allowed = orders / (floor / 2)
        print(f"| {api} | {orders:,} | {wall:.2f} | {cpu:.2f} | {orders / wall:,.0f} | {floor:,.0f} | {allowed:.2f} | "
              f"{cpu / allowed:.2f} |", flush=True)
        if args.by_statement:
            for kind, seconds in sorted(BY_STATEMENT.items(), key=lambda item: -item[1]):
                print(f"    {seconds:6.2f} CPU s  {kind}")
            BY_STATEMENT.clear()


if __name__ == "__main__":
    main()
