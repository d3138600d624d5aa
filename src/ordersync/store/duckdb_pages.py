"""A page written to DuckDB: each table's rows staged as one Arrow table and written by one statement, on the
driver's own connection, in the page's transaction.

What a page costs DuckDB is its statements, not its rows: a statement through SQLAlchemy, or with a list of
parameters, or an ``executemany`` (3 ms a row), costs milliseconds whatever it holds, while a staged Arrow table of
250 orders goes in at once. So a page here is, per table: one lookup of the stored hashes (the page's keys bound
as one list, joined), one insert of its new rows, one ``INSERT OR REPLACE`` of its changed ones, and the history
and children of its changed orders set-based (one update from a staged table, not a statement per order). The
state row is one ``UPDATE``; the rejects table is touched only while it holds rejects of the stream. What is
written, and what counts as new, changed or unchanged, is exactly :class:`ordersync.store.pages.PageWrites`'.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync.history import VERSIONED
from ordersync.store.pages import PageWrites
from ordersync.store.rows import PreparedPage, Reject, Row, State, WriteResult, dumps, now_utc, page_hashes
from ordersync.store.tables import (
    customers,
    order_lines,
    order_versions,
    orders,
    payments,
    rejects,
    stream_state,
)

Duck = Any  # the driver's connection (duckdb.DuckDBPyConnection, behind duckdb_engine's wrapper)


class DuckdbPages(PageWrites):
    """:meth:`write_prepared` for DuckDB: the same rows, results and transaction, in a few bulk statements."""

    _reject_free: set[tuple[str, str]]  # (source, stream) known to have no stored reject: nothing to clear

    def write_prepared(self, source: str, api: str, stream: str, page: PreparedPage, state: State,
                       rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        synced_at = now_utc()
        results = {"orders": WriteResult(), "customers": WriteResult()}
        page_orders, lines, pays, page_customers, hashes = page
        order_hashes, customer_hashes = hashes or page_hashes(page)
        with self._page_transaction() as conn:
            duck = driver(conn)
            replaced: dict[str, str] = {}
            new, changed = _write_changed(duck, orders, "order_id", source, page_orders, order_hashes,
                                          {"api": api, "synced_at": synced_at}, results["orders"],
                                          replaced if self.history else None)
            if self.history and (new or changed):
                _record_history(duck, source, new, changed, replaced, synced_at)
            if new or changed:
                _replace_children(duck, source, new, changed, lines, pays)
            _write_changed(duck, customers, "customer_id", source, page_customers, customer_hashes,
                           {"synced_at": synced_at}, results["customers"])
            self._clear_page_rejects(conn, duck, source, stream, [c["customer_id"] for c in page_customers]
                                     if stream == "customers" else [o["order_id"] for o in page_orders])
            if rejects:
                self._write_rejects(conn, source, stream, rejects)
                self._known_reject_free().discard((source, stream))
            self._save_state(conn, source, api, stream, state, synced_at)
        return results

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        """The stream's state: one ``UPDATE`` (an upsert costs DuckDB three times as much), an insert the first
        time."""
        duck = driver(conn)
        values = (api, dumps(state), at, source, stream)
        updated = duck.execute(f"UPDATE {stream_state.name} SET api = ?, state = ?, updated_at = ? "
                               "WHERE source = ? AND stream = ?", values).fetchone()[0]
        if not updated:
            duck.execute(f"INSERT INTO {stream_state.name} (api, state, updated_at, source, stream) "
                         "VALUES (?, ?, ?, ?, ?)", values)

    def _known_reject_free(self) -> set[tuple[str, str]]:
        if not hasattr(self, "_reject_free"):
            self._reject_free = set()
        return self._reject_free

    def _clear_page_rejects(self, conn: Connection, duck: Duck, source: str, stream: str, ids: list[str]) -> None:
        """:meth:`PageWrites._clear_rejects` while the stream has rejects stored. Whether it has is asked once per
        store: only this process writes a DuckDB file, and only a page of the stream adds to them."""
        free = self._known_reject_free()
        if (source, stream) in free or not ids:
            return
        held = duck.execute(f"SELECT count(*) FROM {rejects.name} WHERE source = ? AND stream = ?",
                            (source, stream)).fetchone()[0]
        if not held:
            free.add((source, stream))
            return
        duck.execute(f"DELETE FROM {rejects.name} WHERE source = ? AND stream = ? AND list_contains(?, reject_key)",
                     (source, stream, ids))


def driver(conn: Connection) -> Duck:
    """The DuckDB connection under ``conn`` (in its transaction)."""
    return conn.connection.driver_connection


def _write_changed(duck: Duck, table: sa.Table, key: str, source: str, rows: list[Row], hashes: list[str],
                   extra: dict[str, Any], result: WriteResult,
                   replaced: dict[str, str] | None = None) -> tuple[list[Row], list[Row]]:
    """The rows whose hash differs from the stored one, written: new ones inserted, changed ones replaced (their
    stored ``raw`` first copied into ``replaced`` when given). Returns them as (new, changed)."""
    if not rows:
        return [], []
    existing = dict(duck.execute(
        f"SELECT t.{key}, t.row_hash FROM {table.name} t JOIN (SELECT unnest(?) AS {key}) k USING ({key}) "
        "WHERE t.source = ?", ([row[key] for row in rows], source)).fetchall())
    new: list[Row] = []
    changed: list[Row] = []
    for row, row_hash in zip(rows, hashes, strict=True):
        if existing.get(row[key], "") == row_hash:
            result.unchanged += 1
            continue
        (changed if row[key] in existing else new).append({**row, **extra, "source": source, "row_hash": row_hash})
    result.new += len(new)
    result.changed += len(changed)
    if changed and replaced is not None:
        replaced.update(_select_by_keys(duck, table, key, source, [row[key] for row in changed], "raw"))
    if changed:  # replaced: deleted, then inserted with the new ones (only ``orders`` keeps a key on DuckDB)
        delete_keys(duck, table, key, source, [row[key] for row in changed])
    if new or changed:  # the keys are now free (this source's lock keeps other writers out)
        insert_rows(duck, table, new + changed)
    return new, changed


def delete_keys(duck: Duck, table: sa.Table, key: str, source: str, keys: list[str]) -> None:
    """Delete the rows of ``source`` whose ``key`` is one of ``keys`` (a hash join, not a list search per row)."""
    duck.execute(f"DELETE FROM {table.name} t USING (SELECT unnest(?) AS k) s WHERE t.source = ? AND t.{key} = s.k",
                 (keys, source))


def _select_by_keys(duck: Duck, table: sa.Table, key: str, source: str, keys: list[str],
                    column: str) -> list[tuple[Any, Any]]:
    return list(duck.execute(
        f"SELECT t.{key}, t.{column} FROM {table.name} t JOIN (SELECT unnest(?) AS {key}) k USING ({key}) "
        "WHERE t.source = ?", (keys, source)).fetchall())


def _record_history(duck: Duck, source: str, new: list[Row], changed: list[Row], replaced: dict[str, str],
                    at: datetime) -> None:
    """:func:`ordersync.history.record`, set-based: the open version of each changed order closed at ``at`` with
    the record it had (one update from a staged table), and a new version opened for every new or changed order."""
    import pyarrow as pa

    last: dict[str, int] = {}
    if replaced:
        stage = pa.table({"order_id": pa.array(list(replaced), pa.string(), memory_pool=pa.system_memory_pool()),
                          "replaced": pa.array(list(replaced.values()), pa.string(),
                                               memory_pool=pa.system_memory_pool())})
        with _registered(duck, "_ordersync_replaced", stage):
            last = dict(duck.execute(
                f"SELECT v.order_id, max(v.version_no) FROM {order_versions.name} v JOIN _ordersync_replaced s "
                "USING (order_id) WHERE v.source = ? GROUP BY v.order_id", (source,)).fetchall())
            duck.execute(
                f"UPDATE {order_versions.name} v SET valid_to = ?, raw = coalesce(v.raw, s.replaced::JSON) "
                "FROM _ordersync_replaced s WHERE v.source = ? AND v.order_id = s.order_id AND v.valid_to IS NULL",
                (at, source))
    opened = [{"source": source, "order_id": row["order_id"], "version_no": last.get(row["order_id"], 0) + 1,
               "valid_from": at, **{name: row.get(name) for name in VERSIONED}, "raw": None}
              for row in new + changed]
    insert_rows(duck, order_versions, opened)


def _replace_children(duck: Duck, source: str, new: list[Row], changed: list[Row], lines: list[Row],
                      pays: list[Row]) -> None:
    """An order's lines and payments are replaced with it (new orders have none yet)."""
    chosen = {o["order_id"] for o in new + changed}
    changed_ids = [o["order_id"] for o in changed]
    for table, items in ((order_lines, lines), (payments, pays)):
        if changed_ids:
            delete_keys(duck, table, "order_id", source, changed_ids)
        fresh = [{**c, "source": source} for c in items if c["order_id"] in chosen]
        if fresh:
            insert_rows(duck, table, fresh)


def insert_rows(duck: Duck, table: sa.Table, rows: list[Row]) -> None:
    """``rows`` (dicts; a missing column is null) appended to ``table`` as one Arrow table, every column in the
    table's order (``insert_into``: a third less than registering it and inserting from a query)."""
    duck.from_arrow(arrow_table(table, rows)).insert_into(table.name)


class _registered:
    """An Arrow table visible to DuckDB under ``name`` for the block."""

    def __init__(self, duck: Duck, name: str, data: Any) -> None:
        self.duck, self.name, self.data = duck, name, data

    def __enter__(self) -> str:
        self.duck.register(self.name, self.data)
        return self.name

    def __exit__(self, failed: type[BaseException] | None, *_exc: object) -> None:
        try:
            self.duck.unregister(self.name)
        except Exception:
            if failed is None:  # after a failed statement DuckDB refuses everything until the rollback: its error
                raise  # is the one to report


def arrow_table(table: sa.Table, rows: list[Row]) -> Any:
    """``rows`` as an Arrow table of ``table``'s columns, built column by column (a third of the time of
    ``Table.from_pylist``), in the C library's memory (returned after each page). ``raw`` goes in as the JSON
    bytes it is; times are cut to whole seconds (Arrow's seconds floor them), as on every destination."""
    import pyarrow as pa

    schema, pool = _schema(table), pa.system_memory_pool()  # Arrow's own pool (mimalloc) kept 30-40 MB after use
    return pa.Table.from_arrays([pa.array([row.get(name) for row in rows], type=schema.field(name).type,
                                          memory_pool=pool) for name in _columns(table)], schema=schema)


@functools.cache
def _columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns]


@functools.cache
def _schema(table: sa.Table) -> Any:
    from ordersync.store.tables import arrow_schema

    return arrow_schema(list(table.columns))
