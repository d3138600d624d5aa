"""A page written to the database: its rows, the records rejected from it and the state that covers them, in one
transaction (:meth:`PageWrites.write_prepared`).

A crash between two pages therefore leaves the database consistent, and the next run resumes from the last state
written. A row whose normalized content (hashed into ``row_hash``; for an order, with its lines and payments) is
unchanged is not written again: that is what tells "new", "changed" and "unchanged" apart, and why a normalizer fix
reaches stored rows on the next full refresh. The generic paths here are SQLAlchemy Core; each backend replaces the
bulk ones (``_insert``, ``_upsert``, ``_existing_hashes``, ``_save_state``) with its own.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync import history
from ordersync.store.database import Database
from ordersync.store.rows import (
    PreparedPage,
    Reject,
    Row,
    State,
    WriteResult,
    content_hash,
    dumps,
    now_utc,
    page_hashes,
)
from ordersync.store.tables import customers, order_lines, order_versions, orders, payments, rejects, stream_state


class PageWrites(Database):
    """The database part of writing a page, in whichever process writes (see :class:`ordersync.store.Store`)."""

    def _page_transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """The transaction of one page: its rows, rejected records and state (PostgreSQL's commits without
        waiting for the disk; see :mod:`ordersync.store.postgres_flight`)."""
        return self.transaction()

    def open_batch(self, source: str, stream: str) -> None:
        """A sync starts a pass over ``stream``: a backend may write its pages several per transaction until
        :meth:`close_batch` (DuckDB does: :mod:`ordersync.store.duckdb_pages`). Here every page is its own."""

    def close_batch(self, source: str, stream: str) -> None:
        """The pass over ``stream`` ends: every page of it is committed when this returns (or this raises)."""

    def write_prepared(self, source: str, api: str, stream: str, page: PreparedPage, state: State,
                       rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        """Write one page and its state in one transaction; say what was new, changed or unchanged."""
        synced_at = now_utc()
        results = {"orders": WriteResult(), "customers": WriteResult()}
        page_orders, lines, pays, page_customers, hashes = page
        order_hashes, customer_hashes = hashes or page_hashes(page)
        with self._page_transaction() as conn:
            replaced: dict[str, str] = {}  # order id -> the raw a changed order replaces, for its history
            new, changed = self._upsert_changed(conn, orders, "order_id", source, page_orders, order_hashes,
                                                synced_at, results["orders"], replaced if self.history else None,
                                                api=api)
            if self.history:
                history.record(conn, order_versions, source, new + changed, replaced, synced_at, self._insert)
            if new or changed:
                self._replace_children(conn, source, new, changed, lines, pays)
            self._upsert_changed(conn, customers, "customer_id", source, page_customers, customer_hashes, synced_at,
                                 results["customers"])
            self._clear_rejects(conn, source, stream, [c["customer_id"] for c in page_customers]
                                if stream == "customers" else [o["order_id"] for o in page_orders])
            if rejects:
                self._write_rejects(conn, source, stream, rejects)
            self._save_state(conn, source, api, stream, state, synced_at)
        return results

    def _replace_children(self, conn: Connection, source: str, new: list[Row], changed: list[Row],
                          lines: list[Row], pays: list[Row]) -> None:
        """An order's lines and payments are replaced with it (new orders have none yet)."""
        chosen = {o["order_id"] for o in new + changed}
        for table, items in ((order_lines, lines), (payments, pays)):
            if changed:
                ids = [o["order_id"] for o in changed]
                conn.execute(table.delete().where(table.c.source == source, table.c.order_id.in_(ids)))
            fresh = [self._complete(table, {**c, "source": source, "raw": self._raw_value(c["raw"])})
                     for c in items if c["order_id"] in chosen]
            if fresh:
                self._insert(conn, table, fresh)

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        self._upsert_small(conn, stream_state, [{"source": source, "stream": stream, "api": api,
                                                 "state": dumps(state), "updated_at": at}])

    @staticmethod
    def _raw_value(raw: bytes) -> Any:
        """A row's ``raw`` (JSON bytes) as this database's bulk writes take it: text (SQLite stores TEXT)."""
        return raw.decode()

    @staticmethod
    def _complete(table: sa.Table, row: Row) -> Row:
        """Every column of ``table`` (missing ones None, unknown keys dropped), in the table's order; times in
        whole seconds on every destination (the vendor's exact value stays in ``raw``)."""
        names, times = _layout(table)
        complete = {name: row.get(name) for name in names}
        for name in times:
            value = complete[name]
            if value is not None and value.microsecond:
                complete[name] = value.replace(microsecond=0)
        return complete

    def _upsert_changed(self, conn: Connection, table: sa.Table, key: str, source: str, rows: list[Row],
                        hashes: list[str], synced_at: datetime, result: WriteResult,
                        replaced: dict[str, str] | None = None, **extra: Any) -> tuple[list[Row], list[Row]]:
        """Write the rows whose hash differs from the stored one; return them as (new, changed). ``replaced``,
        when given, receives the stored ``raw`` of each changed row before it is overwritten."""
        if not rows:
            return [], []
        existing = self._existing_hashes(conn, table, key, source, [row[key] for row in rows])
        new: list[Row] = []
        changed: list[Row] = []
        for row, row_hash in zip(rows, hashes, strict=True):
            if existing.get(row[key], "") == row_hash:
                result.unchanged += 1
                continue
            complete = self._complete(table, {**row, **extra, "source": source, "synced_at": synced_at,
                                              "row_hash": row_hash, "raw": self._raw_value(row["raw"])})
            (changed if row[key] in existing else new).append(complete)
        result.new += len(new)
        result.changed += len(changed)
        if changed and replaced is not None:
            for chunk in range(0, len(changed), 500):
                keys = [row[key] for row in changed[chunk:chunk + 500]]
                replaced.update(conn.execute(
                    sa.select(table.c[key], table.c.raw).where(table.c.source == source, table.c[key].in_(keys))
                ).all())
        if new:  # keys known to be free (this source's lock keeps other writers out): a plain bulk insert
            self._insert(conn, table, new)
        if changed:
            self._upsert(conn, table, changed)
        return new, changed

    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        """The stored ``row_hash`` of each of ``keys`` that exists (None: stored before schema 2)."""
        return dict(conn.execute(
            sa.select(table.c[key], table.c.row_hash).where(table.c.source == source, table.c[key].in_(keys))
        ).all())

    def _upsert_small(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """A few rows by primary key through SQLAlchemy (``INSERT ... ON CONFLICT`` on all three databases)."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
        stmt = insert(table)
        update = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
        conn.execute(stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key], set_=update),
                     rows)

    def _write_rejects(self, conn: Connection, source: str, stream: str, items: Sequence[Reject]) -> None:
        seen_at = now_utc()
        found: dict[str, Row] = {}
        for item in items:
            record_id = item.get("record_id")
            raw = dumps(item.get("raw"))
            key = str(record_id) if record_id is not None else "hash:" + content_hash(item.get("raw"))
            found[key] = {"source": source, "stream": stream, "reject_key": key,
                          "record_id": None if record_id is None else str(record_id),
                          "reason": item.get("reason") or "rejected", "raw": raw, "seen_at": seen_at}
        self._upsert_small(conn, rejects, list(found.values()))

    def _clear_rejects(self, conn: Connection, source: str, stream: str, ids: Sequence[str]) -> None:
        """A record stored now is no longer rejected: the reject kept under its id (same source and stream) is
        deleted in the page's transaction, so the exit status returns to 0 once the vendor fixed the record.
        (A reject without an id is kept by a hash of the record: nothing can match it; it stays until deleted.)"""
        for chunk in range(0, len(ids), 500):
            conn.execute(rejects.delete().where(rejects.c.source == source, rejects.c.stream == stream,
                                                rejects.c.reject_key.in_(list(ids[chunk:chunk + 500]))))

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """Insert or replace ``rows`` (complete rows, every column) by primary key: a bulk path per database."""
        raise NotImplementedError

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """Insert ``rows`` whose keys are known to be free."""
        self._upsert(conn, table, rows)


@functools.cache
def _layout(table: sa.Table) -> tuple[list[str], list[str]]:
    """A table's column names, and those that hold times."""
    return [c.name for c in table.columns], [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]
