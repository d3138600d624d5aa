"""The published tables and the bookkeeping tables, behind one interface (SQLAlchemy Core).

Every page of a sync is written by :meth:`Store.write_page` in one transaction: the rows it brought and the
stream state that covers them. A crash between two pages therefore leaves the database consistent, and the
next run resumes from the last state written. Rows whose ``raw`` is unchanged are not written again, which is
what lets a run tell "new", "changed" and "unchanged" apart.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from ordersync import history
from ordersync.apis.base import Row, Rows, State
from ordersync.errors import StoreError

SCHEMA_VERSION = 1

_ISO = "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02dZ"
Timestamp = sa.DateTime(timezone=True).with_variant(
    sqlite.DATETIME(storage_format=_ISO, regexp=r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z"), "sqlite"
)
Money = sa.BigInteger

metadata = sa.MetaData()

orders = sa.Table(
    "orders", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("api", sa.Text, nullable=False),
    sa.Column("order_number", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("currency", sa.Text),
    sa.Column("total_minor", Money),
    sa.Column("discount_minor", Money),
    sa.Column("tax_minor", Money),
    sa.Column("is_paid", sa.Boolean),
    sa.Column("customer_id", sa.Text),
    sa.Column("customer_name", sa.Text),
    sa.Column("customer_email", sa.Text),
    sa.Column("created_at", Timestamp),
    sa.Column("updated_at", Timestamp),
    sa.Column("synced_at", Timestamp, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
)
order_lines = sa.Table(
    "order_lines", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("line_id", sa.Text),
    sa.Column("product_id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("quantity", sa.Integer),
    sa.Column("unit_price_minor", Money),
    sa.Column("total_minor", Money),
    sa.Column("currency", sa.Text),
    sa.Column("raw", sa.Text, nullable=False),
)
customers = sa.Table(
    "customers", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("company", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("created_at", Timestamp),
    sa.Column("updated_at", Timestamp),
    sa.Column("synced_at", Timestamp, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
)
payments = sa.Table(
    "payments", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("payment_no", sa.Integer, primary_key=True),
    sa.Column("method", sa.Text),
    sa.Column("amount_minor", Money),
    sa.Column("currency", sa.Text),
    sa.Column("raw", sa.Text, nullable=False),
)
stream_state = sa.Table(
    "_ordersync_state", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("api", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
runs = sa.Table(
    "_ordersync_runs", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("new_rows", sa.Integer, nullable=False, default=0),
    sa.Column("changed_rows", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged_rows", sa.Integer, nullable=False, default=0),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
)
schema_version = sa.Table("_ordersync_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
# --- order history and dashboard indexes (issue 14; logic in history.py) -----------------------------------
order_versions = history.define(metadata, Timestamp, Money)
sa.Index("orders_by_created", orders.c.created_at, orders.c.source, orders.c.currency, orders.c.is_paid,
         orders.c.total_minor)  # the dashboard's orders list and its per-day chart, read from the index alone
sa.Index("orders_by_email", orders.c.customer_email)
sa.Index("orders_by_number", orders.c.order_number)
# --- end of order history ----------------------------------------------------------------------------------

PUBLISHED = {"orders": orders, "order_lines": order_lines, "customers": customers, "payments": payments}


@dataclass
class WriteResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def add(self, other: WriteResult) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Store:
    def __init__(self, url: str, history: bool = True) -> None:
        self.url = url
        self.history = history  # keep order_versions (issue 14); off only to measure what it costs
        self.engine = self._connect(url)
        self._write_lock = threading.Lock()  # SQLite takes one writer at a time anyway; this avoids busy waits
        self._prepare()

    @staticmethod
    def _connect(url: str) -> Engine:
        if not url.startswith("sqlite:"):
            raise StoreError(
                f"destination url '{url.split('://')[0]}://...' is not supported yet: use sqlite:///PATH "
                "(PostgreSQL and DuckDB are planned)"
            )
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot create the database {path}: the folder {parent} does not exist")
        memory = not path or path == ":memory:"
        if memory:  # one shared connection, or every thread would see its own empty database
            engine = sa.create_engine(url, connect_args={"check_same_thread": False}, poolclass=sa.pool.StaticPool)
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; one fsync per checkpoint
            cursor.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint every ~40 MB, not every 4 MB: 35% faster
            cursor.close()

        return engine

    def _prepare(self) -> None:
        try:
            with self.engine.begin() as conn:
                new_history = not sa.inspect(conn).has_table(order_versions.name)
                metadata.create_all(conn)
                if new_history:  # a database from before order history: every order gets its first version
                    history.backfill(conn, order_versions, orders)
                    for index in orders.indexes:  # and the dashboard's indexes (create_all skips existing tables)
                        index.create(conn, checkfirst=True)
                version = conn.execute(sa.select(schema_version.c.version)).scalar()
                if version is None:
                    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                elif version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database was written by a newer ordersync (schema {version}); upgrade ordersync"
                    )
        except sa.exc.DatabaseError as exc:
            raise StoreError(f"cannot open the destination {self.url}: {exc.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to {self.url}: {exc.orig}") from None

    # --- state ------------------------------------------------------------------------------------------
    def load_state(self, source: str, stream: str) -> State | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                sa.select(stream_state.c.state).where(stream_state.c.source == source, stream_state.c.stream == stream)
            ).scalar()
        return orjson.loads(raw) if raw else None

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State) -> None:
        stmt = sqlite.insert(stream_state).values(
            source=source, stream=stream, api=api, state=dumps(state), updated_at=now_utc()
        )
        update = {"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at}
        conn.execute(stmt.on_conflict_do_update(index_elements=["source", "stream"], set_=update))

    # --- rows -------------------------------------------------------------------------------------------
    def write_page(self, source: str, api: str, stream: str, rows: Rows, state: State) -> dict[str, WriteResult]:
        """Write one page's rows and the state that covers them, atomically; say what was new or changed."""
        synced_at = now_utc()
        results = {"orders": WriteResult(), "customers": WriteResult()}
        with self.transaction() as conn:
            previous_raw: dict[str, str] = {}
            changed_orders = self._upsert_changed(conn, orders, "order_id", source, rows.orders, synced_at,
                                                  results["orders"], previous_raw, api=api)
            if self.history:
                history.record(conn, order_versions, source, changed_orders, previous_raw, synced_at)
            if changed_orders:
                ids = {r["order_id"] for r in changed_orders}
                for table, children in ((order_lines, rows.order_lines), (payments, rows.payments)):
                    conn.execute(table.delete().where(table.c.source == source, table.c.order_id.in_(list(ids))))
                    chosen = [{**c, "source": source, "raw": dumps(c["raw"])} for c in children if c["order_id"] in ids]
                    if chosen:
                        conn.execute(table.insert(), chosen)
            self._upsert_changed(conn, customers, "customer_id", source, rows.customers, synced_at,
                                 results["customers"])
            self._save_state(conn, source, api, stream, state)
        return results

    def _upsert_changed(self, conn: Connection, table: sa.Table, key: str, source: str, rows: Sequence[Row],
                        synced_at: datetime, result: WriteResult, previous_raw: dict[str, str] | None = None,
                        **extra: Any) -> list[Row]:
        if not rows:
            return []
        latest: dict[str, Row] = {}
        for row in rows:  # a page may hold the same record twice: the last one wins
            latest[row[key]] = row
        existing = dict(conn.execute(
            sa.select(table.c[key], table.c.raw).where(table.c.source == source, table.c[key].in_(list(latest)))
        ).all())
        changed: list[Row] = []
        for row_key, row in latest.items():
            raw = dumps(row["raw"])
            if existing.get(row_key) == raw:
                result.unchanged += 1
                continue
            if row_key in existing:
                result.changed += 1
                if previous_raw is not None:  # the raw being replaced, for the order history
                    previous_raw[row_key] = existing[row_key]
            else:
                result.new += 1
            changed.append({**row, **extra, "source": source, "synced_at": synced_at, "raw": raw})
        if changed:
            stmt = sqlite.insert(table)
            update = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
            conn.execute(stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key], set_=update),
                         changed)
        return changed

    # --- run log ----------------------------------------------------------------------------------------
    def start_run(self, source: str, stream: str) -> int:
        with self.transaction() as conn:
            result = conn.execute(runs.insert().values(source=source, stream=stream, started_at=now_utc(),
                                                       status="running"))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, rows: WriteResult, requests: int, error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                finished_at=now_utc(), status=status, new_rows=rows.new, changed_rows=rows.changed,
                unchanged_rows=rows.unchanged, requests=requests, error=error,
            ))

    # --- reading ----------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Per source and stream: the last run, the stored state and how many rows the source has."""
        with self.engine.connect() as conn:
            states = {(r.source, r.stream): r for r in conn.execute(sa.select(stream_state))}
            last_runs: dict[tuple[str, str], Any] = {}
            for r in conn.execute(sa.select(runs).order_by(runs.c.run_id)):
                last_runs[(r.source, r.stream)] = r
            counts: dict[str, dict[str, int]] = {
                name: dict(conn.execute(sa.select(t.c.source, sa.func.count()).group_by(t.c.source)).all())
                for name, t in PUBLISHED.items()
            }
        result = []
        for source, stream in sorted(set(states) | set(last_runs)):
            state, run = states.get((source, stream)), last_runs.get((source, stream))
            result.append({
                "source": source,
                "stream": stream,
                "last_run": run.started_at if run else None,
                "last_status": run.status if run else None,
                "last_error": run.error if run else None,
                "state": orjson.loads(state.state) if state else None,
                "rows": {name: c.get(source, 0) for name, c in counts.items()},
            })
        return result

    def totals(self, sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Orders, lines, customers and the order total per source and currency, for the demo's summary."""
        query = sa.select(
            orders.c.source, orders.c.api, orders.c.currency, sa.func.count().label("orders"),
            sa.func.sum(orders.c.total_minor).label("total_minor"),
        ).group_by(orders.c.source, orders.c.api, orders.c.currency).order_by(orders.c.source, orders.c.currency)
        if sources:
            query = query.where(orders.c.source.in_(list(sources)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def count(self, table: str, source: str | None = None) -> int:
        t = PUBLISHED[table]
        query = sa.select(sa.func.count()).select_from(t)
        if source:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
