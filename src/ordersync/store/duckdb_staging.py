"""A DuckDB page in two steps: staged (its rows compared with the stored ones and put into Arrow tables), then
written together with the other staged pages of its stream (deletes, appends and history, one statement per table).

Staging reads the database (the stored hashes, the records changed orders replace, their last version numbers);
writing only writes. A page's orders are never held twice in one batch (the batch is written first), so what
staging read is still what the batch's transaction replaces. Customers, which adjacent pages often share, are held
by key: a later page's version of a customer replaces an earlier one of the same batch, compared with it as with
a stored one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ordersync.history import VERSIONED
from ordersync.store.rows import PreparedPage, Reject, Row, State, WriteResult, page_hashes
from ordersync.store.tables import customers, order_lines, order_versions, orders, payments

Duck = Any  # the driver's connection (duckdb.DuckDBPyConnection, behind duckdb_engine's wrapper)
ORDER_TABLES = (orders, order_versions, order_lines, payments)


@dataclass
class StagedPage:
    """One page, compared and converted: what writing it takes, and what it counted."""

    source: str
    api: str
    stream: str
    at: datetime  # its rows' synced_at
    state: State
    rejects: Sequence[Reject]
    clear_ids: list[str]  # the ids whose rejects it clears
    results: dict[str, WriteResult]
    appends: dict[str, list[Any]] = field(default_factory=dict)  # table name -> Arrow tables
    changed_orders: list[str] = field(default_factory=list)  # deleted (with their lines and payments) first
    replaced: list[tuple[str, str, datetime]] = field(default_factory=list)  # (order, raw it replaces, at)
    order_keys: set[str] = field(default_factory=set)
    size: int = 0  # bytes of raw held


@dataclass
class Batch:
    """Staged pages of one stream, waiting for one transaction; its customers by key (last version wins)."""

    source: str
    stream: str
    pages: list[StagedPage] = field(default_factory=list)
    customers: dict[str, tuple[Row, str]] = field(default_factory=dict)  # key -> (row, hash)
    stored_customers: set[str] = field(default_factory=set)  # held keys that replace a stored customer
    order_keys: set[str] = field(default_factory=set)
    size: int = 0

    def add(self, page: StagedPage) -> None:
        self.pages.append(page)
        self.order_keys |= page.order_keys
        self.size += page.size


@dataclass
class Known:
    """What a pass that started with none of the source's rows stored knows of them without reading the table (see
    :meth:`ordersync.store.duckdb_pages.DuckdbPages.open_batch`); None: nothing, read the table."""

    orders: set[int] | None = None  # the hash of every order key the pass wrote
    customers: dict[int, str] | None = None  # the row hash the pass wrote for each customer, by its key's hash

    def bound(self, limit: int) -> None:
        """Forget what has grown past ``limit`` keys (the table is read instead): memory stays bounded."""
        if self.orders is not None and len(self.orders) > limit:
            self.orders = None
        if self.customers is not None and len(self.customers) > limit:
            self.customers = None


def stage_page(duck: Duck, source: str, api: str, stream: str, page: PreparedPage, state: State,
               rejects: Sequence[Reject], at: datetime, history: bool, batch: Batch,
               known: Known | None = None) -> StagedPage:
    """Compare ``page`` with the stored rows (and the customers ``batch`` holds) and convert what it writes.
    ``known``: for a table whose every stored key of the source is known here, by its hash (see
    :meth:`ordersync.store.duckdb_pages.DuckdbPages.open_batch`), only the keys found there are read from the table
    (most often none), and the keys this page writes are added."""
    known = known or Known()
    page_orders, lines, pays, page_customers, hashes = page
    order_hashes, customer_hashes = hashes or page_hashes(page)
    staged = StagedPage(source, api, stream, at, state, rejects,
                        [c["customer_id"] for c in page_customers] if stream == "customers"
                        else [o["order_id"] for o in page_orders],
                        {"orders": WriteResult(), "customers": WriteResult()})
    new, changed = _compare(duck, orders, "order_id", source, page_orders, order_hashes, staged.results["orders"],
                            known.orders)
    written = [{**row, "api": api, "synced_at": at, "source": source, "row_hash": h} for row, h in new + changed]
    staged.order_keys = {row["order_id"] for row, _ in new + changed}
    staged.changed_orders = [row["order_id"] for row, _ in changed]
    if written:
        chosen = staged.order_keys
        staged.appends = {orders.name: [arrow_table(orders, written)],
                          order_lines.name: [arrow_table(order_lines, [{**c, "source": source} for c in lines
                                                                        if c["order_id"] in chosen])],
                          payments.name: [arrow_table(payments, [{**c, "source": source} for c in pays
                                                                  if c["order_id"] in chosen])]}
        staged.size = sum(len(row["raw"]) for row in written)
        if history:
            staged.appends[order_versions.name] = [_versions(duck, staged, written)]
    _hold_customers(duck, source, page_customers, customer_hashes, at, staged.results["customers"], batch,
                    known.customers)
    return staged


def _compare(duck: Duck, table: sa.Table, key: str, source: str, rows: list[Row], hashes: list[str],
             result: WriteResult, known: set[int] | None) -> tuple[list[tuple[Row, str]], list[tuple[Row, str]]]:
    """The rows whose hash differs from the stored one, with their hash: (new, changed); ``result`` counts."""
    if not rows:
        return [], []
    existing = _stored(duck, table, key, source, [row[key] for row in rows], known)
    new: list[tuple[Row, str]] = []
    changed: list[tuple[Row, str]] = []
    for row, row_hash in zip(rows, hashes, strict=True):
        if existing.get(row[key], "") == row_hash:
            result.unchanged += 1
            continue
        (changed if row[key] in existing else new).append((row, row_hash))
    result.new += len(new)
    result.changed += len(changed)
    if known is not None:
        known.update(hash(row[key]) for row, _ in new)
    return new, changed


def _stored(duck: Duck, table: sa.Table, key: str, source: str, keys: list[str],
            known: set[int] | None) -> dict[str, Any]:
    """The stored hash of each of ``keys`` that is stored, read from the table (DuckDB scans the source's keys for
    it: the cost of a page grows with the table); with ``known``, only for the keys whose hash is there (a hash
    shared by another key only costs that key a read)."""
    if known is not None:
        keys = [k for k in keys if hash(k) in known]
        if not keys:
            return {}
    return dict(select_by_keys(duck, table, key, source, keys, "row_hash"))


def _versions(duck: Duck, staged: StagedPage, written: list[Row]) -> Any:
    """The version each new or changed order opens (:mod:`ordersync.history`); a changed order's open version is
    closed when the batch is written, with the record it had (``staged.replaced``)."""
    last: dict[str, int] = {}
    if staged.changed_orders:
        raws = dict(select_by_keys(duck, orders, "order_id", staged.source, staged.changed_orders, "raw"))
        staged.replaced = [(key, raws[key], staged.at) for key in staged.changed_orders if key in raws]
        last = dict(duck.execute(
            f"SELECT v.order_id, max(v.version_no) FROM {order_versions.name} v JOIN (SELECT unnest(?) AS order_id) "
            "k USING (order_id) WHERE v.source = ? GROUP BY v.order_id", (staged.changed_orders, staged.source)
        ).fetchall())
    return arrow_table(order_versions, [
        {"source": staged.source, "order_id": row["order_id"], "version_no": last.get(row["order_id"], 0) + 1,
         "valid_from": staged.at, **{name: row.get(name) for name in VERSIONED}, "raw": None} for row in written])


def _hold_customers(duck: Duck, source: str, rows: list[Row], hashes: list[str], at: datetime, result: WriteResult,
                    batch: Batch, written: dict[int, str] | None) -> None:
    """Each customer compared with the batch's version of it, else the stored one; the new or changed ones held.

    ``written``: in a pass that started with no customer of the source stored, the row hash of each customer the
    pass wrote, by its key's hash. A repeat customer is then compared with it, not read from the table (Firespring,
    20,000 orders: 231 reads of the table, each a scan, for 8,633 repeat customers). Two keys sharing a hash (about
    one pass in 10**9 at 200,000 customers) make the second's row count as changed rather than new; it is stored
    the same way (deleted by key, which deletes nothing, and appended)."""
    if not rows:
        return
    unheld = [row["customer_id"] for row in rows if row["customer_id"] not in batch.customers]
    if written is not None:
        stored = {key: written[hash(key)] for key in unheld if hash(key) in written}
    else:
        stored = dict(select_by_keys(duck, customers, "customer_id", source, unheld, "row_hash")) if unheld else {}
    for row, row_hash in zip(rows, hashes, strict=True):
        key = row["customer_id"]
        held = batch.customers.get(key)
        before = held[1] if held is not None else stored.get(key, "")
        if before == row_hash:
            result.unchanged += 1
            continue
        if held is not None or key in stored:
            result.changed += 1
        else:
            result.new += 1
        if key in stored:
            batch.stored_customers.add(key)
        batch.customers[key] = ({**row, "source": source, "synced_at": at, "row_hash": row_hash}, row_hash)
        if written is not None:
            written[hash(key)] = row_hash


def write_batch(duck: Duck, batch: Batch) -> None:
    """The batch's rows: changed orders (with their lines and payments) and customers deleted, their history closed,
    then one append per table."""
    source = batch.source
    changed = [key for page in batch.pages for key in page.changed_orders]
    if changed:
        for table in (orders, order_lines, payments):  # versions are kept: the open one is closed below
            delete_keys(duck, table, "order_id", source, changed)
        _close_versions(duck, source, [r for page in batch.pages for r in page.replaced])
    if batch.stored_customers:
        delete_keys(duck, customers, "customer_id", source, sorted(batch.stored_customers))
    for table in ORDER_TABLES:
        parts = [part for page in batch.pages for part in page.appends.get(table.name, ()) if part.num_rows]
        if parts:
            _append(duck, table, parts)
    if batch.customers:
        _append(duck, customers, [arrow_table(customers, [row for row, _ in batch.customers.values()])])


def _close_versions(duck: Duck, source: str, replaced: list[tuple[str, str, datetime]]) -> None:
    """Each changed order's open version closed at its page's time, keeping the record it had: one update."""
    if not replaced:
        return
    import pyarrow as pa

    pool = pa.system_memory_pool()
    stage = pa.table({"order_id": pa.array([r[0] for r in replaced], pa.string(), memory_pool=pool),
                      "replaced": pa.array([r[1] for r in replaced], pa.string(), memory_pool=pool),
                      "at": pa.array([r[2] for r in replaced], pa.timestamp("s", tz="UTC"), memory_pool=pool)})
    duck.register("_ordersync_replaced", stage)
    try:
        duck.execute(f"UPDATE {order_versions.name} v SET valid_to = s.at, raw = coalesce(v.raw, s.replaced::JSON) "
                     "FROM _ordersync_replaced s WHERE v.source = ? AND v.order_id = s.order_id "
                     "AND v.valid_to IS NULL", (source,))
    except Exception:
        with contextlib.suppress(Exception):  # DuckDB refuses everything until the rollback: the failure is the one
            duck.unregister("_ordersync_replaced")  # to report
        raise
    duck.unregister("_ordersync_replaced")


def _append(duck: Duck, table: sa.Table, parts: list[Any]) -> None:
    import pyarrow as pa

    duck.from_arrow(parts[0] if len(parts) == 1 else pa.concat_tables(parts)).insert_into(table.name)


def select_by_keys(duck: Duck, table: sa.Table, key: str, source: str, keys: list[str],
                   column: str) -> list[tuple[Any, Any]]:
    """``(key, column)`` of the stored rows of ``source`` whose ``key`` is one of ``keys``: the keys bound as one list
    and joined (DuckDB scans the table either way: no index serves this; a join costs a third of an ``IN`` list)."""
    return list(duck.execute(
        f"SELECT t.{key}, t.{column} FROM {table.name} t JOIN (SELECT unnest(?) AS {key}) k USING ({key}) "
        "WHERE t.source = ?", (keys, source)).fetchall())


def delete_keys(duck: Duck, table: sa.Table, key: str, source: str, keys: list[str]) -> None:
    """Delete the rows of ``source`` whose ``key`` is one of ``keys`` (a hash join, not a list search per row)."""
    duck.execute(f"DELETE FROM {table.name} t USING (SELECT unnest(?) AS k) s WHERE t.source = ? AND t.{key} = s.k",
                 (keys, source))


def arrow_table(table: sa.Table, rows: list[Row]) -> Any:
    """``rows`` as an Arrow table of ``table``'s columns (a missing one null), built column by column (a third of
    the time of ``Table.from_pylist``), in the C library's memory (Arrow's own pool, mimalloc, kept 30-40 MB after
    use). ``raw`` goes in as the JSON bytes it is; times are cut to whole seconds (Arrow's seconds floor them), as
    on every destination."""
    import pyarrow as pa

    schema, pool = _schema(table), pa.system_memory_pool()
    return pa.Table.from_arrays([pa.array([row.get(name) for row in rows], type=schema.field(name).type,
                                          memory_pool=pool) for name in _columns(table)], schema=schema)


@functools.cache
def _columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns]


@functools.cache
def _schema(table: sa.Table) -> Any:
    from ordersync.store.tables import arrow_schema

    return arrow_schema(list(table.columns))
