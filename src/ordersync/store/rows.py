"""A page's rows as the store takes them: one version of each key, ``raw`` as JSON bytes, and the hashes that
decide "unchanged". Plain data and functions, shared by the sync process and the writer process (a
:class:`PreparedPage` is what crosses the pipe to the writer)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict

import orjson
import sqlalchemy as sa

Row = dict[str, Any]
State = dict[str, Any]


@dataclass
class WriteResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def add(self, other: WriteResult) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged


class Reject(TypedDict, total=False):
    """A record that could not be stored: kept in ``_ordersync_rejects`` instead of stopping the source."""

    record_id: str | None
    reason: str
    raw: Any


class PreparedPage(NamedTuple):
    """A page's rows, one version of each key, with ``raw`` as JSON bytes: what a writer process receives."""

    orders: list[Row]
    order_lines: list[Row]
    payments: list[Row]
    customers: list[Row]
    hashes: tuple[list[str], list[str]] | None = None  # (orders, customers), when the sync process had the time


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def content_hash(value: Any) -> str:
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def row_hash(row: Row, children: Iterable[Row] = ()) -> str:
    """The hash that decides "unchanged": of a row (``raw`` already JSON bytes) and its children (an order's
    lines and payments). ``raw`` is hashed as the text it is, not escaped again inside another JSON
    document (that second encoding was most of the cost of a write); the other columns as JSON with sorted keys."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (row, *children):
        plain = dict(part)
        raw = plain.pop("raw")
        digest.update(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\x00")
        digest.update(raw)
        digest.update(b"\x01")
    return digest.hexdigest()


def _raw_text(rows: list[Row]) -> list[Row]:
    """The rows, each ``raw`` now JSON bytes: a record's text as the paging loop rendered it (see
    :func:`ordersync.rejects.normalize_page`), else rendered here. Bytes, not text: they are hashed as bytes and
    cross to a writer process with no encoding. In place: the rows are the page's own, built for this write."""
    for row in rows:
        if type(raw := row["raw"]) is not bytes:
            row["raw"] = orjson.dumps(raw)
    return rows


def on_conflict_update(table: sa.Table) -> str:
    """``ON CONFLICT (primary key) DO UPDATE SET`` every other column of ``table`` from the row offered: the
    upsert clause of the SQL written by hand for the hot paths (PostgreSQL and SQLite say it alike)."""
    keys = ", ".join(c.name for c in table.primary_key)
    update = ", ".join(f"{c.name} = excluded.{c.name}" for c in table.columns if not c.primary_key)
    return f"ON CONFLICT ({keys}) DO UPDATE SET {update}"


def last_wins(rows: Iterable[Row], key: Sequence[str]) -> list[Row]:
    """A page may hold the same record twice: keep the last copy, so that no key is written twice."""
    latest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        latest[tuple(row[k] for k in key)] = row
    return list(latest.values())


def prepare_page(rows: Any, hashed: bool = False) -> PreparedPage:
    """One version of each key, ``raw`` as JSON bytes (hashed and stored as such: the vendor's record exactly as
    received); with ``hashed``, the rows' hashes too (else the writer computes them)."""
    page = PreparedPage(
        _raw_text(last_wins(rows.orders, ("order_id",))),
        _raw_text(last_wins(rows.order_lines, ("order_id", "line_no"))),
        _raw_text(last_wins(getattr(rows, "payments", []), ("order_id", "payment_no"))),
        _raw_text(last_wins(rows.customers, ("customer_id",))),
    )
    return page._replace(hashes=page_hashes(page)) if hashed else page


def page_hashes(page: PreparedPage) -> tuple[list[str], list[str]]:
    """The hash of each order (with its lines and payments) and of each customer of a page."""
    children: dict[str, dict[str, list[Row]]] = {}
    for name, items in (("lines", page.order_lines), ("payments", page.payments)):
        for child in items:
            children.setdefault(child["order_id"], {"lines": [], "payments": []})[name].append(child)
    empty: dict[str, list[Row]] = {"lines": [], "payments": []}
    order_hashes = []
    for o in page.orders:
        mine = children.get(o["order_id"], empty)
        order_hashes.append(row_hash(o, [*mine["lines"], *mine["payments"]]))
    return order_hashes, [row_hash(c) for c in page.customers]
