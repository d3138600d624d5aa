"""Each destination's bare-driver floor: what its driver alone spends on exactly what ordersync's store sends.

For each destination, a recorder sees every call ordersync's store makes to the driver while it writes a page (SQL
and parameters as given to the driver, the rows of each COPY, the Arrow table of each DuckDB append, the
transaction's begin and commit), and a replayer sends the same calls, page by page, to a second database through a
bare connection (``sqlite3``, ``duckdb``, ``psycopg``) with the store's own settings. Only the replay is timed:
the time the database and its driver need for the rows, indexes, history and state of each page, with no Python of
ordersync's in between. :mod:`store_floor` drives it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ordersync.store import Store, open_store

Call = tuple[Any, ...]  # ("sql", statement, parameters, many) | ("copy", statement, types, rows) | ...


class Floor:
    """One destination's recorder and replayer. ``open`` gives the store ordersync writes through (recorded) and
    the bare connection the calls are replayed on, both on empty databases with ordersync's tables."""

    name = ""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.by_kind: dict[str, float] = {}  # CPU seconds per kind of call (--by-statement)

    def take(self) -> list[Call]:
        taken, self.calls = self.calls, []
        return taken

    def listen(self, engine: sa.Engine) -> None:
        """The statements SQLAlchemy sends, and the transactions' ends."""
        @sa.event.listens_for(engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
            self.calls.append(("sql", sql, params, many))

        @sa.event.listens_for(engine, "begin")
        def _begin(_conn: Any) -> None:
            self.calls.append(("begin",))

        @sa.event.listens_for(engine, "commit")
        def _commit(_conn: Any) -> None:
            self.calls.append(("commit",))

    def replay(self, calls: list[Call]) -> tuple[float, float]:
        """Wall and CPU seconds of one page's calls on the bare connection."""
        started, cpu = time.perf_counter(), time.process_time()
        for call in calls:
            before = time.process_time()
            self.send(call)
            kind = "COMMIT" if call[0] == "commit" else call[0] if call[0] != "sql" else " ".join(call[1].split()[:3])
            self.by_kind[kind] = self.by_kind.get(kind, 0.0) + time.process_time() - before
        return time.perf_counter() - started, time.process_time() - cpu

    def send(self, call: Call) -> None:
        raise NotImplementedError

    def open(self, work: Path, server: str | None) -> Store | None:
        """The recorded store (None: this destination cannot run here)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the bare connection (a SQLite or DuckDB file's last checkpoint counts: it is the write's end)."""


class SqliteFloor(Floor):
    """``sqlite3`` with the store's pragmas, and its checkpoints in a thread beside it as the store runs them."""

    name = "sqlite"

    def open(self, work: Path, server: str | None) -> Store:
        import sqlite3

        from ordersync.store.checkpoint import Checkpointer
        from ordersync.store.sqlite import CHECKPOINT_FRAMES, PRAGMAS

        open_store(f"sqlite:///{work / 'floor.db'}").close()  # the same tables and indexes
        self.db = sqlite3.connect(work / "floor.db", isolation_level=None)
        for pragma in PRAGMAS:
            self.db.execute(f"PRAGMA {pragma}")
        self.checkpointer = Checkpointer(work / "floor.db", PRAGMAS, CHECKPOINT_FRAMES)
        store = open_store(f"sqlite:///{work / 'ordersync.db'}")
        self.listen(store.engine)
        return store

    def send(self, call: Call) -> None:
        if call[0] == "sql":
            _, sql, params, many = call
            if many:
                self.db.executemany(sql, params)
            else:
                self.db.execute(sql, params).fetchall()
        elif call[0] == "commit":
            self.db.execute("COMMIT")
            self.checkpointer.committed()

    def close(self) -> None:
        self.checkpointer.close()
        self.db.close()


class DuckdbFloor(Floor):
    """``duckdb`` with the store's settings; the page path's own calls recorded through its ``driver``."""

    name = "duckdb"

    def open(self, work: Path, server: str | None) -> Store:
        from ordersync.store import duckdb_pages
        from ordersync.store.duckdb import SETTINGS, WRITE_SETTINGS, open_file

        open_store(f"duckdb:///{work / 'floor.duckdb'}").close()
        self.db = open_file(str(work / "floor.duckdb"))
        for setting in ("TimeZone = 'UTC'", *SETTINGS, *WRITE_SETTINGS):
            self.db.execute(f"SET {setting}")
        store = open_store(f"duckdb:///{work / 'ordersync.duckdb'}")
        self.listen(store.engine)
        real = duckdb_pages.driver
        self._restore = lambda: setattr(duckdb_pages, "driver", real)
        duckdb_pages.driver = lambda conn: _RecordingDuck(real(conn), self.calls)  # type: ignore[assignment]
        return store

    def send(self, call: Call) -> None:
        kind = call[0]
        if kind == "begin":
            self.db.begin()
        elif kind == "commit":
            self.db.commit()
        elif kind == "sql":
            self.db.execute(call[1], call[2] or None).fetchall()
        elif kind == "append":
            self.db.from_arrow(call[2]).insert_into(call[1])
        elif kind == "register":
            self.db.register(call[1], call[2])
        elif kind == "unregister":
            self.db.unregister(call[1])

    def close(self) -> None:
        self._restore()
        self.db.close()


class _RecordingDuck:
    """A DuckDB connection that notes what the page path asks of it (see :mod:`ordersync.store.duckdb_pages`)."""

    def __init__(self, real: Any, calls: list[Call]) -> None:
        self.real, self.calls = real, calls

    def execute(self, sql: str, params: Any = None) -> Any:
        self.calls.append(("sql", sql, params, False))
        return self.real.execute(sql, params) if params is not None else self.real.execute(sql)

    def from_arrow(self, data: Any) -> Any:
        calls, relation = self.calls, self.real.from_arrow(data)

        class Appending:
            def insert_into(self, table: str) -> None:
                calls.append(("append", table, data))
                relation.insert_into(table)

        return Appending()

    def register(self, name: str, data: Any) -> None:
        self.calls.append(("register", name, data))
        self.real.register(name, data)

    def unregister(self, name: str) -> None:
        self.calls.append(("unregister", name))
        self.real.unregister(name)


class PostgresFloor(Floor):
    """``psycopg`` on a second database of the same server, ``synchronous_commit = off`` as the page connections."""

    name = "postgresql"

    def open(self, work: Path, server: str | None) -> Store | None:
        if server is None:
            return None
        import psycopg

        from ordersync.store import postgres_copy

        floor_url = _fresh_database(server, "ordersync_floor")
        open_store(floor_url).close()
        self.db = psycopg.connect(floor_url, autocommit=False)
        self.db.execute("SET synchronous_commit = off")
        self.db.commit()
        store = open_store(_fresh_database(server, "ordersync_recorded"))
        self.listen(store._pages)  # type: ignore[attr-defined]
        real = postgres_copy.cursor_of
        self._restore = lambda: setattr(postgres_copy, "cursor_of", real)
        postgres_copy.cursor_of = lambda conn: _RecordingCursor(real(conn), self.calls)  # type: ignore[assignment]
        return store

    def send(self, call: Call) -> None:
        kind = call[0]
        if kind == "commit":
            self.db.commit()
        elif kind == "sql":
            with self.db.cursor() as cursor:
                if call[3]:
                    cursor.executemany(call[1], call[2])
                else:
                    cursor.execute(call[1], call[2] or None)
        elif kind == "copy":
            with self.db.cursor() as cursor, cursor.copy(call[1]) as copy:
                copy.set_types(call[2])
                for row in call[3]:
                    copy.write_row(row)

    def close(self) -> None:
        self._restore()
        self.db.close()


class _RecordingCursor:
    """A psycopg cursor that notes its statements and the rows of its COPYs."""

    def __init__(self, real: Any, calls: list[Call]) -> None:
        self.real, self.calls = real, calls

    def execute(self, sql: str, params: Any = None) -> Any:
        self.calls.append(("sql", sql, params, False))
        return self.real.execute(sql, params)

    def fetchall(self) -> Any:
        return self.real.fetchall()

    def close(self) -> None:
        self.real.close()

    @contextlib.contextmanager
    def copy(self, sql: str) -> Iterator[Any]:
        rows: list[Any] = []
        types: list[Any] = []
        with self.real.copy(sql) as copy:
            yield _RecordingCopy(copy, rows, types)
        self.calls.append(("copy", sql, types, rows))


class _RecordingCopy:
    def __init__(self, real: Any, rows: list[Any], types: list[Any]) -> None:
        self.real, self.rows, self.types = real, rows, types

    def set_types(self, types: list[Any]) -> None:
        self.types[:] = types
        self.real.set_types(types)

    def write_row(self, row: Any) -> None:
        self.rows.append(list(row))
        self.real.write_row(row)


def _fresh_database(server: str, name: str) -> str:
    """``name`` on the server at ``server`` (a database URL), dropped and created again: its URL."""
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        engine.dispose()
    return str(sa.make_url(server).set(database=name))


FLOORS: dict[str, Callable[[], Floor]] = {"sqlite": SqliteFloor, "postgresql": PostgresFloor, "duckdb": DuckdbFloor}
