"""The tables every destination holds, at the latest schema version, with native types per database.

One definition serves SQLite, PostgreSQL and DuckDB: ``Timestamp`` is ``timestamptz`` / ``TIMESTAMPTZ`` (and ISO text
on SQLite), amounts are ``bigint``, ``raw`` is ``json`` on PostgreSQL (the record's text kept byte for byte, which
``raw->>'field'`` reads in SQL; ``jsonb`` would reorder keys, drop duplicates and cost the server most of its CPU in
a sync), ``JSON`` on DuckDB and text on SQLite. Columns marked ``info={"internal": True}`` are bookkeeping, not
published: exports leave them out. A new table or column is one entry in :mod:`ordersync.store.migrations` plus its
definition here.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, UserDefinedType

from ordersync import history

_ISO = "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02dZ"
Timestamp = sa.DateTime(timezone=True).with_variant(
    sqlite.DATETIME(storage_format=_ISO, regexp=r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z"), "sqlite"
)
Money = sa.BigInteger


class _JsonText(UserDefinedType[str]):
    """A database's JSON type, bound as text: the database reads the JSON from the text itself (psycopg sends a
    ``str`` parameter as an untyped literal, which PostgreSQL reads as ``json``)."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


class RawJson(TypeDecorator[str]):
    """A JSON document held as its text in Python on every database (``json`` on PostgreSQL, ``JSON`` on DuckDB):
    stored and read back as the very text written, never parsed and rendered again."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("postgresql", "duckdb"):
            return dialect.type_descriptor(_JsonText("JSON"))
        return dialect.type_descriptor(sa.Text())

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value  # the stored text (PostgresStore's connections read json as text)
        return orjson.dumps(value).decode()  # a driver that parsed it (another engine on the same tables)


def _internal(name: str, type_: Any, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, info={"internal": True}, **kw)


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
    sa.Column("raw", RawJson, nullable=False),
    _internal("row_hash", sa.Text),  # schema 2: the normalized row's hash decides "unchanged"
    # schema 5 (after row_hash: a migration appends columns): where the order stands in one vocabulary for every
    # API (ordersync.model.Lifecycle), and the part of total_minor no line holds (docs/lifecycle.md)
    sa.Column("lifecycle", sa.Text),
    sa.Column("adjustment_minor", Money),
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
    sa.Column("raw", RawJson, nullable=False),
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
    sa.Column("raw", RawJson, nullable=False),
    _internal("row_hash", sa.Text),  # schema 2
)
payments = sa.Table(
    "payments", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("payment_no", sa.Integer, primary_key=True),
    sa.Column("method", sa.Text),
    sa.Column("amount_minor", Money),
    sa.Column("currency", sa.Text),
    sa.Column("raw", RawJson, nullable=False),
)
stream_state = sa.Table(
    "_ordersync_state", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("api", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
RUN_COUNTS = tuple(f"{kind}_{count}" for kind in ("orders", "customers") for count in ("new", "changed", "unchanged"))
"""The columns of ``_ordersync_runs`` that count a run's orders and customers apart (schema 6), in table order."""
runs = sa.Table(
    "_ordersync_runs", metadata,
    # DuckDB has no serial type: a sequence numbers the runs there (SQLite and PostgreSQL ignore it / use it alike)
    sa.Column("run_id", sa.Integer, sa.Sequence("_ordersync_runs_seq"), primary_key=True),
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
    # schema 6: orders and customers apart (the three counts above are their sums) and the run's duration to the
    # millisecond; null in runs logged before (ordersync status --json says "not recorded")
    *[sa.Column(name, sa.Integer) for name in RUN_COUNTS],
    sa.Column("duration_ms", sa.BigInteger),
)
rejects = sa.Table(  # schema 2: records that could not be stored, kept so that one bad record never blocks a source
    "_ordersync_rejects", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("reject_key", sa.Text, primary_key=True),  # the record id, or a hash of the record when it has none
    sa.Column("record_id", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", RawJson, nullable=False),
    sa.Column("seen_at", Timestamp, nullable=False),
)
schema_version = sa.Table("_ordersync_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
# schema 3: order history (logic in ordersync.history) and the dashboard's indexes
order_versions = history.define(metadata, Timestamp, Money, RawJson)
DASHBOARD_INDEXES = (
    sa.Index("orders_by_created", orders.c.created_at, orders.c.source, orders.c.currency, orders.c.is_paid,
             orders.c.total_minor),  # the dashboard's orders list and its per-day chart, read from the index alone
    sa.Index("orders_by_email", orders.c.customer_email),
    sa.Index("orders_by_number", orders.c.order_number),
)


def _not_on_duckdb(*_args: Any, dialect: Dialect | None = None, **_kw: Any) -> bool:
    return dialect is None or dialect.name != "duckdb"


# DuckDB looks nothing up through an index here (its joins and filters scan; an index serves only a single-key
# equality), but keeps every index in memory and writes each key twice (e-guma, 100,000 orders: 25% of the write's
# CPU, and out of memory at 64 MB). It keeps the key of ``orders`` and of the bookkeeping tables (their upserts);
# the other keys stay what the writes guarantee (docs/destinations.md). Files created before keep theirs.
for _item in (order_lines.primary_key, payments.primary_key, customers.primary_key, order_versions.primary_key,
              *DASHBOARD_INDEXES):
    _item.ddl_if(callable_=_not_on_duckdb)

PUBLISHED = {"orders": orders, "order_lines": order_lines, "customers": customers, "payments": payments}


def published_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns a user sees (exports, comparisons): bookkeeping columns left out."""
    return [c for c in table.columns if not c.info.get("internal")]


def arrow_schema(columns: list[sa.Column[Any]]) -> Any:
    """Arrow types for these columns: int64 amounts, UTC timestamps, booleans, strings (``raw`` as JSON text)."""
    import pyarrow as pa

    def arrow_type(column: sa.Column[Any]) -> Any:
        if isinstance(column.type, sa.Boolean):
            return pa.bool_()
        if isinstance(column.type, sa.Integer):
            return pa.int64()
        if isinstance(column.type, sa.DateTime):
            return pa.timestamp("s", tz="UTC")
        return pa.string()

    return pa.schema([(c.name, arrow_type(c)) for c in columns])
