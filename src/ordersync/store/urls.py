"""Destination URLs: which backend a URL names, and how to show one without its password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ordersync.errors import StoreError

if TYPE_CHECKING:
    from ordersync.store.base import Store

SCHEMES = ("sqlite:///PATH", "postgresql://USER@HOST:5432/DB", "duckdb:///PATH")
_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")


def redact(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` anywhere in ``text``."""
    return _PASSWORD.sub(r"\1***\3", text)


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""


def backend_for(url: str) -> type[Store]:
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
