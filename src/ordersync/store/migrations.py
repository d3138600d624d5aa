"""Schema versions: every database is stamped in ``_ordersync_schema``; older ones are upgraded in place.

Why not Alembic: the schema is small and changes by adding tables and columns, and the three databases all have
transactional DDL. So each migration below runs in one transaction together with the version stamp it reaches:
a step either happened completely (and says so) or not at all. Concurrent openers are serialized by a lock taken
before the version is read (a PostgreSQL transaction-level advisory lock; a file lock for SQLite and DuckDB),
so two processes never run the same step. A fresh database is created from :mod:`tables` directly and stamped
with :data:`LATEST`; ``tests/store/test_migrations.py`` checks that an upgraded database equals a fresh one.

Adding a table: define it in :mod:`tables`, then add ``N: lambda conn: tables.new_table.create(conn)`` to
:data:`MIGRATIONS` (schema 3 added ``order_versions`` that way). That is all. A column is appended to its table's
definition (``ALTER TABLE`` appends, and an upgraded table must equal a fresh one); one whose value the
normalizers derive is filled from the stored vendor records (schema 5, :mod:`ordersync.store.rederive`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync import history
from ordersync.errors import StoreError
from ordersync.store import rederive, tables

FIRST = 1  # the schema of the first release (SQLite only): the published tables, state and run log


def _v2(conn: Connection) -> None:
    """The normalized row's hash decides "unchanged" (a normalizer fix reaches stored rows); rejected records."""
    for table in (tables.orders, tables.customers):
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN row_hash TEXT"))
    tables.rejects.create(conn)


def _v3(conn: Connection) -> None:
    """Order history: every stored order gets its first version; the dashboard's indexes."""
    tables.order_versions.create(conn)
    history.backfill(conn, tables.order_versions, tables.orders)
    for index in tables.DASHBOARD_INDEXES:
        index.create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    """PostgreSQL keeps ``raw`` as ``json``, the vendor's text as received, not ``jsonb`` (which reorders keys,
    drops duplicate ones and cost the server most of its CPU in a sync). Rewrites each table with a ``raw`` once.
    SQLite and DuckDB already keep the text: nothing to do but the stamp."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables.metadata.sorted_tables:
        if "raw" in table.c:
            conn.execute(sa.text(f"ALTER TABLE {table.name} ALTER COLUMN raw TYPE json USING raw::json"))


def _v5(conn: Connection) -> None:
    """Where each order stands (``lifecycle``) and the part of its total no line holds (``adjustment_minor``),
    filled from the stored vendor records, whose lines and payments follow today's meaning too
    (:mod:`ordersync.store.rederive`; docs/lifecycle.md). A column already there is kept: safe to run again."""
    _add_columns(conn, tables.orders, ("lifecycle", "adjustment_minor"))
    rederive.rederive_orders(conn)


def _v6(conn: Connection) -> None:
    """The run log counts orders and customers apart and keeps each run's duration to the millisecond. Runs logged
    before keep null there (their counts were kept as sums only). A column already there is kept."""
    _add_columns(conn, tables.runs, (*tables.RUN_COUNTS, "duration_ms"))


def _add_columns(conn: Connection, table: sa.Table, names: tuple[str, ...]) -> None:
    """Append the columns ``names`` of ``table``'s definition that the database's table lacks (null in every
    row); those already there are kept, so a step can run again."""
    present = set(conn.execute(sa.text(f"SELECT * FROM {table.name} WHERE 1 = 0")).keys())  # DuckDB's driver
    # cannot reflect columns
    for name in names:
        if name not in present:
            kind = table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6}
LATEST = max(MIGRATIONS, default=FIRST)


def read_version(conn: Connection) -> int | None:
    """The stamped version, or None for a database ordersync has not written yet."""
    if not sa.inspect(conn).has_table(tables.schema_version.name):
        if sa.inspect(conn).has_table(tables.orders.name):
            raise StoreError("the destination has an 'orders' table but no ordersync schema stamp: it was not "
                             "written by ordersync; use another database (or schema)")
        return None
    return conn.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(tables.schema_version.delete())
    conn.execute(tables.schema_version.insert().values(version=version))


def prepare(engine: Engine, outer_lock: AbstractContextManager[object], tx_lock: Callable[[Connection], None],
            where: str) -> int:
    """Create the tables on first use, or upgrade an older schema step by step; return the version found."""
    with outer_lock:
        with engine.begin() as conn:
            tx_lock(conn)
            found = read_version(conn)
            if found is None:
                tables.metadata.create_all(conn)
                _stamp(conn, LATEST)
                return LATEST
            if found > LATEST:
                raise StoreError(f"{where} was written by a newer ordersync (schema {found}; this one knows up to "
                                 f"{LATEST}): upgrade ordersync (pip install -U ordersync) before using it")
        for version in range(found + 1, LATEST + 1):
            with engine.begin() as conn:
                tx_lock(conn)
                if read_version(conn) != version - 1:  # another process did this step meanwhile
                    continue
                MIGRATIONS[version](conn)
                _stamp(conn, version)
        return found
