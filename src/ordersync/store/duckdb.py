"""DuckDB (``duckdb:///PATH``): the analyst's destination. Bulk pages through Arrow; one writing process per file.

DuckDB lets one process open a file for writing at a time. Sources synced by one ``ordersync sync`` share that
process and run side by side; a second process waits up to ``lock_wait`` seconds for the file, then is told who
holds it. Locks per source are files beside the database, as for SQLite.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordersync.errors import StoreError
from ordersync.store.base import Store
from ordersync.store.duckdb_pages import DuckdbPages
from ordersync.store.files import FileLocks, check_file, database_path

_HOLDER = re.compile(r"\(PID (\d+)\)")

# Measured with benchmarks/store_floor.py and run.py (RESULTS.md, "Where a page's time goes"). Each setting is DuckDB's
# own; ``WRITE_SETTINGS`` apply only where ordersync writes (not to a read-only open).
MEMORY_LIMIT = "48MB"
SETTINGS = (
    # DuckDB's default is 80% of the machine's memory, and it kept every block of the file it had touched (1 GB at
    # 100,000 orders). With a limit it evicts blocks already in the file; what must stay is the blocks a statement
    # works on and the key of ``orders`` (the other indexes are not created on DuckDB: tables.py). The sync's own
    # process holds about 220 MB beside it (Python, DuckDB, Arrow, the pages being read): 240 to 310 MB in all.
    f"memory_limit = '{MEMORY_LIMIT}'",
)
WRITE_SETTINGS = (
    # One thread: a page is a few small statements, and waking DuckDB's workers for each cost more than it saved
    # (a one-row update: 1.8 ms with two threads, 0.6 ms with one).
    "threads = 1",
    # Long JSON texts (raw) in ZSTD rather than DuckDB's default dictionary+FSST: a checkpoint compresses Frontcore's
    # records four times faster into a file a third the size (107 MB of records: 0.79 s and 91 MB, 0.19 s and
    # 18 MB). Strings under 256 bytes on average keep the other methods.
    "disabled_compression_methods = 'dict_fsst'",
    "zstd_min_string_length = 256",
    # A checkpoint rewrites each table's open row group, so the fewer the better, but what it has not yet written
    # waits in memory (or in a temporary file): 128 MB of it with 48 MB of memory failed a checkpoint (out of
    # memory, Prio at 94,000 orders); with 32 MB, Frontcore spent 13% more on checkpoints than with 64 MB; DuckDB's
    # default of 16 MB rewrote the open row groups every few pages.
    "checkpoint_threshold = '64MB'",
)


ROW_GROUP_ROWS = 4096
"""Rows per row group in a file ordersync writes (DuckDB's default is 122,880). A checkpoint rewrites each table's
last, open row group: with the default that is the whole table until it holds 122,880 rows, so every checkpoint of
a sync cost more than the one before (Frontcore, 100,000 orders, DuckDB's own work for ordersync's calls: 19.3 CPU s
with the default, 9.6 with 4,096; benchmarks/store_floor.py). A file's row groups are those of the process writing
it: DuckDB keeps no such setting in the file, and a process opening it with the default merges them again."""
ALIAS = "ordersync"


def open_file(path: str | Path, read_only: bool = False) -> Any:
    """A DuckDB connection to the file at ``path`` (created if missing, unless ``read_only``), attached with
    :data:`ROW_GROUP_ROWS` rows per row group and used as the connection's default database. DuckDB sets the row
    group size only where a file is attached, not where it is opened: hence an in-memory connection that attaches
    it."""
    import duckdb

    conn = duckdb.connect()
    options = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
    try:
        quoted = str(path).replace("'", "''")
        conn.execute(f"ATTACH '{quoted}' AS {ALIAS} ({options})")
        conn.execute(f"USE {ALIAS}")
    except BaseException:
        conn.close()
        raise
    return conn


class _Files:
    """The process's connections to DuckDB files, one per file, shared by every store open on it. DuckDB lets a
    process attach a file once (a second attach is refused, where a second ``duckdb.connect`` of the same path
    shared the first one's database): the stores of one process (a sync and the read-only views of the demo, a
    Dagster run, a notebook's ``open_store``) each take the one connection and give it back; the last closes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, tuple[Any, int, bool]] = {}  # the connection, its users, whether read-only

    def take(self, path: Path, read_only: bool) -> Any:
        """The file's connection (opened now if no store of the process holds it); a store that writes cannot share
        one opened read-only: it is told so in one line, before it writes."""
        key = path.resolve()
        with self._lock:
            conn, users, opened_read_only = self._open.get(key) or (open_file(path, read_only), 0, read_only)
            if opened_read_only and not read_only:
                raise StoreError(f"the DuckDB file {path} is open read-only in this process (a dashboard or another "
                                 "read-only store): close that store before writing; DuckDB lets a process open a "
                                 "file once")
            self._open[key] = (conn, users + 1, opened_read_only)
            return conn

    def give_back(self, path: Path) -> None:
        key = path.resolve()
        with self._lock:
            conn, users, opened_read_only = self._open.pop(key)
            if users > 1:
                self._open[key] = (conn, users - 1, opened_read_only)
            else:
                conn.close()


_FILES = _Files()


class DuckdbStore(FileLocks, DuckdbPages, Store):
    scheme = "duckdb"

    def _connect(self, create: bool) -> Engine:
        try:
            import duckdb
            import pyarrow  # noqa: F401
        except ImportError:
            raise StoreError("DuckDB destinations need the duckdb extra: pip install 'ordersync[duckdb]'") from None
        self.path = database_path(self.url)
        check_file(self.path, create)
        engine = self._engine()

        @sa.event.listens_for(engine, "connect")
        def _settings(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("SET TimeZone = 'UTC'")
            if self.path is None:  # in memory, nothing could be evicted: DuckDB's defaults
                return
            for setting in SETTINGS if self.read_only else SETTINGS + WRITE_SETTINGS:
                dbapi_connection.execute(f"SET {setting}")

        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                return engine
            except (sa.exc.DBAPIError, duckdb.Error) as exc:
                reason = self._reason(exc)
                if "lock" not in reason.lower():
                    engine.dispose()
                    raise StoreError(f"cannot open the DuckDB file {self.path}: {reason}") from None
                if time.monotonic() >= deadline:
                    engine.dispose()
                    holder = _HOLDER.search(reason)
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise StoreError(
                        f"the DuckDB file {self.path} is open in {who}: DuckDB lets one process write a file at a "
                        f"time (waited {self.lock_wait:g}s); sync several sources from one 'ordersync sync', wait "
                        "for the other to finish, or use PostgreSQL for syncs from several processes") from None
                time.sleep(0.2)

    def _engine(self) -> Engine:
        """The file's engine: its connections are cursors of the process's one connection to the file
        (:class:`_Files`); in memory, one shared connection (or each thread would see a database of its own)."""
        if self.path is None:
            return sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)
        from duckdb_engine import ConnectionWrapper

        path, read_only, lock = self.path, self.read_only, threading.Lock()
        held: list[Any] = []

        def cursor() -> Any:
            with lock:
                if not held:
                    held.append(_FILES.take(path, read_only))
                conn = held[0].cursor()
            conn.execute(f"USE {ALIAS}")
            return ConnectionWrapper(conn)

        engine = sa.create_engine("duckdb://", creator=cursor)

        @sa.event.listens_for(engine, "engine_disposed")
        def _release(_engine: Engine) -> None:
            with lock:
                if held:
                    held.pop()
                    _FILES.give_back(path)

        return engine

    def _errors(self) -> tuple[type[BaseException], ...]:
        import duckdb

        return (sa.exc.OperationalError, sa.exc.DBAPIError, duckdb.Error)  # the page writes use the driver itself
