"""What the destination tests share: open one store per kind of destination, read tables back comparably."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ordersync.store import PUBLISHED, Store, open_store


def open_all(tmp_path: Path, pg_url: str) -> dict[str, Store]:
    """A fresh SQLite file, PostgreSQL database and DuckDB file."""
    return {
        "sqlite": open_store(f"sqlite:///{tmp_path / 'orders.db'}"),
        "postgresql": open_store(pg_url),
        "duckdb": open_store(f"duckdb:///{tmp_path / 'orders.duckdb'}"),
    }


def published(store: Store, table: str) -> list[dict[str, Any]]:
    """Every published row of ``table`` in key order, ``raw`` parsed, without ``synced_at`` (a time of writing)."""
    rows = []
    for batch in store.iter_rows(table):
        for row in batch:
            row.pop("synced_at", None)
            row["raw"] = orjson.loads(row["raw"])
            rows.append(row)
    return rows


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {table: published(store, table) for table in PUBLISHED}
