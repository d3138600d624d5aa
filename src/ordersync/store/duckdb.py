"""DuckDB (``duckdb:///PATH``): the analyst's destination. Bulk pages through Arrow; one writing process per file.

DuckDB lets one process open a file for writing at a time. Sources synced by one ``ordersync sync`` share that
process and run side by side; a second process waits up to ``lock_wait`` seconds for the file, then is told who
holds it. Locks per source are files beside the database, as for SQLite.
"""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync.errors import StoreError
from ordersync.store.base import Store
from ordersync.store.files import FileLocks, check_file, database_path
from ordersync.store.rows import Row
from ordersync.store.tables import arrow_schema

_HOLDER = re.compile(r"\(PID (\d+)\)")

# Frontcore, 100,000 orders (benchmarks/run.py --full): 49.8 s and 1,038 MB with DuckDB's defaults, 42.8 s and 729 MB
# with these.
SETTINGS = (
    # DuckDB's default is 80% of the machine's memory, and it kept every page of the file it had touched: 1 GB at
    # 100,000 orders, growing with the history. With a limit it evicts pages already written to the file.
    "memory_limit = '512MB'",
    # Its default, 16 MB of log, rewrote the tables' changed blocks into the file every few pages.
    "checkpoint_threshold = '128MB'",
)


class DuckdbStore(FileLocks, Store):
    scheme = "duckdb"

    def _connect(self, create: bool) -> Engine:
        try:
            import duckdb  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError:
            raise StoreError("DuckDB destinations need the duckdb extra: pip install 'ordersync[duckdb]'") from None
        self.path = database_path(self.url)
        check_file(self.path, create)
        target = f"duckdb:///{self.path}" if self.path else "duckdb:///:memory:"
        # in memory: one shared connection, or each thread would see a database of its own
        engine = sa.create_engine(target, poolclass=sa.pool.StaticPool if self.path is None else None,
                                  connect_args={"read_only": True} if self.read_only and self.path else {})

        @sa.event.listens_for(engine, "connect")
        def _settings(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("SET TimeZone = 'UTC'")
            for setting in SETTINGS if self.path else ():  # in memory, nothing could be evicted
                dbapi_connection.execute(f"SET {setting}")

        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                return engine
            except sa.exc.DBAPIError as exc:
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

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sa.exc.OperationalError, sa.exc.DBAPIError)

    def _arrow(self, conn: Connection, table: sa.Table, rows: list[Row], sql: str) -> None:
        import pyarrow as pa

        columns = [c.name for c in table.columns]
        data = pa.Table.from_pylist(rows, schema=arrow_schema(list(table.columns)))
        duck = conn.connection.driver_connection
        name = f"_ordersync_stage_{table.name}"
        duck.register(name, data)  # type: ignore[union-attr]
        try:
            names = ", ".join(columns)
            duck.execute(sql.format(table=table.name, names=names, stage=name))  # type: ignore[union-attr]
        finally:
            duck.unregister(name)  # type: ignore[union-attr]

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        self._arrow(conn, table, rows, "INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM {stage}")

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        self._arrow(conn, table, rows, "INSERT INTO {table} ({names}) SELECT {names} FROM {stage}")

