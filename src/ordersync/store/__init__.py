"""The destination database: published tables, bookkeeping tables, bulk page writes, locks and migrations.

``Store(url)`` opens (and on first use creates, or upgrades) a SQLite, PostgreSQL or DuckDB destination.
"""

from ordersync.store.base import Reject, Store, WriteResult, content_hash, dumps, now_utc
from ordersync.store.locks import LockBusy
from ordersync.store.migrations import LATEST as SCHEMA_VERSION
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
    "metadata", "now_utc", "order_lines", "order_versions", "orders", "payments", "published_columns", "redact",
    "rejects", "runs", "schema_version", "stream_state",
]
