"""The one way to open a destination: :func:`open_store` picks the backend its URL names.

The backends are imported only when named, so that opening SQLite imports neither psycopg nor DuckDB.
"""

from __future__ import annotations

from typing import Any

from ordersync.errors import StoreError
from ordersync.store.base import Store
from ordersync.store.urls import SCHEMES, redact, scheme_of


def open_store(url: str, **options: Any) -> Store:
    """Open (and on first use create, or upgrade) the destination at ``url``: ``sqlite:///PATH``,
    ``postgresql://...`` or ``duckdb:///PATH``.

    ``options``: ``schema``, ``lock_wait``, ``create``, ``history``, ``read_only`` (see
    :class:`ordersync.store.database.Database`); for PostgreSQL also ``connect_timeout``, ``statement_timeout``
    and ``lock_timeout`` (see :mod:`ordersync.store.bounds`). An unknown scheme is one line naming the ones
    supported."""
    return backend_for(url)(url, **options)


def backend_for(url: str) -> type[Store]:
    """The Store class of the database ``url`` names."""
    scheme = scheme_of(url)
    if scheme == "sqlite":
        from ordersync.store.sqlite import SqliteStore

        return SqliteStore
    if scheme in ("postgresql", "postgres"):
        from ordersync.store.postgres import PostgresStore

        return PostgresStore
    if scheme == "duckdb":
        from ordersync.store.duckdb import DuckdbStore

        return DuckdbStore
    shown = f"'{scheme}://...'" if scheme else f"'{redact(url)}'"
    raise StoreError(f"destination url {shown} is not supported: use one of {', '.join(SCHEMES)}")
