"""The destination database: published tables, bookkeeping tables, bulk page writes, locks and migrations.

``open_store(url)`` opens (and on first use creates, or upgrades) a SQLite, PostgreSQL or DuckDB destination: the
one way to open one (:mod:`ordersync.store.factory`). What a store does is split by job, one module each:
``database`` (opening), ``pages`` (a page and its state in one transaction), ``runs`` (the run log and locks),
``reads`` (status, totals, counts, rows) and ``base`` (:class:`Store`, the writing part's front, with the writer
process behind it); ``sqlite``, ``postgres*`` and ``duckdb`` hold each database's own ways.
"""

from ordersync.store.base import Store
from ordersync.store.factory import open_store
from ordersync.store.locks import LockBusy
from ordersync.store.migrations import LATEST as SCHEMA_VERSION
from ordersync.store.rows import Reject, WriteResult, content_hash, dumps, now_utc
from ordersync.store.tables import (
    PUBLISHED,
    customers,
    metadata,
    order_lines,
    order_versions,
    orders,
    payments,
    published_columns,
    rejects,
    runs,
    schema_version,
    stream_state,
)
from ordersync.store.urls import redact

__all__ = [
    "PUBLISHED", "SCHEMA_VERSION", "LockBusy", "Reject", "Store", "WriteResult", "content_hash", "customers", "dumps",
    "metadata", "now_utc", "open_store", "order_lines", "order_versions", "orders", "payments", "published_columns",
    "redact", "rejects", "runs", "schema_version", "stream_state",
]
