"""Pages written to DuckDB: staged one by one (:mod:`ordersync.store.duckdb_staging`), and written, within a sync,
several pages of a stream per transaction, with the state of the last one.

What a page costs DuckDB is its statements and its commit, not its rows: an append of 100 rows costs about what an
append of 1,000 does, and so does each lookup, update and commit (Firespring's 100-order pages, 100,000 orders: 20
CPU s for DuckDB's statements alone, page by page). So each table's rows go in as one Arrow table, the stored
hashes are looked up with the page's keys as one list, and, while a sync reads a stream (between
:meth:`DuckdbPages.open_batch` and :meth:`DuckdbPages.close_batch`), consecutive pages of the stream are written
together: one transaction, one append per table, one state row (the last page's), one commit. A batch is written
once it holds :data:`BATCH_BYTES` of records or its first page is :data:`BATCH_SECONDS` old (a timer writes it
then), before a page that holds one of its orders again, before any page of another stream, and when the pass
ends.

The guarantee is the page's, by batches: a batch's pages and the state of its last page commit together or not at
all, so the database never holds a page without the state that covers it, nor a state beyond its pages. A crash
loses the pages of the batch not yet committed (at most a second or :data:`BATCH_BYTES` of records), with their
state: the next run reads them again. A batch that fails to commit fails the pass (in the page or the pass's end
that wrote it, else at the stream's next page), and no later page of that pass is written. Outside a sync (a
direct :meth:`write_page`), each page is its own transaction, as on every destination.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ordersync.errors import StoreError
from ordersync.store.duckdb_staging import Batch, Duck, Known, StagedPage, stage_page, write_batch
from ordersync.store.pages import PageWrites
from ordersync.store.rows import PreparedPage, Reject, State, WriteResult, dumps, now_utc
from ordersync.store.tables import customers, orders, rejects, stream_state

BATCH_BYTES = 4 << 20  # records held before a batch is written: Frontcore, 3 pages of 250; Firespring, 25 of 100
BATCH_SECONDS = 1.0  # the longest a staged page waits for its commit
KNOWN_KEYS = 200_000  # keys of a first pass kept per table (Known) before it reads the table instead


def driver(conn: Connection) -> Duck:
    """The DuckDB connection under ``conn`` (in its transaction)."""
    return conn.connection.driver_connection


class DuckdbPages(PageWrites):
    """:meth:`write_prepared` for DuckDB: the same rows, results and atomicity, in a few bulk statements."""

    def __init__(self, url: str, **options: Any) -> None:
        self._pages_lock = threading.RLock()  # staging, writing and the timer take turns
        self._batching: set[tuple[str, str]] = set()  # (source, stream) whose pages are batched now
        self._batch: Batch | None = None
        self._timer: threading.Timer | None = None
        self._lost: dict[tuple[str, str], str] = {}  # streams whose batch failed: their next page is refused
        self._reject_free: set[tuple[str, str]] = set()  # streams known to have no stored reject
        self._known: dict[tuple[str, str], Known] = {}  # a pass's tables whose every stored key it knows
        self._reader: Connection | None = None  # the passes' connection for staging's reads
        super().__init__(url, **options)

    # --- a sync's passes -------------------------------------------------------------------------------------
    def open_batch(self, source: str, stream: str) -> None:
        """Batch the pages of ``stream`` until :meth:`close_batch` (a sync's pass over it). A table that holds no
        row of the source yet (a first sync) is read only for the keys the pass has written already: what the pass
        writes is kept here (:class:`~ordersync.store.duckdb_staging.Known`: each order key's hash, each customer's
        row hash; this process alone writes the file, and the source's lock keeps other passes out), up to
        :data:`KNOWN_KEYS` keys per table; then the pass reads the table for every key, as any other."""
        with self._pages_lock:
            self._batching.add((source, stream))
            self._lost.pop((source, stream), None)
            with self.engine.connect() as conn:
                duck = driver(conn)
                stored = {table.name: bool(duck.execute(f"SELECT 1 FROM {table.name} WHERE source = ? LIMIT 1",
                                                       (source,)).fetchone()) for table in (orders, customers)}
                self._known[(source, stream)] = Known(None if stored[orders.name] else set(),
                                                      None if stored[customers.name] else {})

    def close_batch(self, source: str, stream: str) -> None:
        """Write the stream's batch, and stop batching it; a batch of it that failed meanwhile fails here."""
        with self._pages_lock:
            self._batching.discard((source, stream))
            self._known.pop((source, stream), None)
            if not self._batching and self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._batch is not None and (self._batch.source, self._batch.stream) == (source, stream):
                self._write_held()
            if (lost := self._lost.pop((source, stream), None)) is not None:
                raise StoreError(lost)

    def flush_pages(self) -> None:
        """Write the batch held, if any (before a run's end is logged, and when the store closes)."""
        with self._pages_lock:
            if self._batch is not None:
                self._write_held()

    def finish_run(self, *args: Any, **kwargs: Any) -> None:
        """A run's end is logged after its pages: the batch held is written first."""
        self.flush_pages()
        super().finish_run(*args, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        """The batch held is written (a failure leaves it unstored, as a crash would), then the store closes."""
        with contextlib.suppress(StoreError):
            self.flush_pages()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()  # type: ignore[misc]

    # --- pages -----------------------------------------------------------------------------------------------
    def write_prepared(self, source: str, api: str, stream: str, page: PreparedPage, state: State,
                       rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        key = (source, stream)
        with self._pages_lock:
            if (lost := self._lost.get(key)) is not None:
                raise StoreError(f"not written: {lost}")
            held = self._batch
            if held is not None and (held.source, held.stream) != key:
                self._write_held(fail=False)  # another stream's failure is its own (kept in _lost)
            elif held is not None and not held.order_keys.isdisjoint(o["order_id"] for o in page.orders):
                self._write_held()  # an order of the batch again: compared with it stored, as page by page
            if key not in self._batching:
                return self._write_alone(source, api, stream, page, state, rejects)
            batch = self._batch or Batch(source, stream)
            known = self._known.get(key, Known())
            known.bound(KNOWN_KEYS)
            if self._reader is None:  # reads only, outside any transaction: staging compares with what is committed
                self._reader = self.engine.connect()  # one for the passes (a connection per page cost its rollback)
            staged = stage_page(driver(self._reader), source, api, stream, page, state, rejects, now_utc(),
                                self.history, batch, known)
            batch.add(staged)
            if self._batch is None:
                self._batch = batch
                self._timer = threading.Timer(BATCH_SECONDS, self._write_when_due, (batch,))
                self._timer.daemon = True
                self._timer.start()
            if batch.size >= BATCH_BYTES:
                self._write_held()
            return staged.results

    def _write_alone(self, source: str, api: str, stream: str, page: PreparedPage, state: State,
                     rejects: Sequence[Reject]) -> dict[str, WriteResult]:
        """One page, one transaction (outside a sync's pass)."""
        with self._page_transaction() as conn:
            batch = Batch(source, stream)
            batch.add(stage_page(driver(conn), source, api, stream, page, state, rejects, now_utc(), self.history,
                                 batch))
            self._write(conn, batch)
        return batch.pages[0].results

    def _write_when_due(self, batch: Batch) -> None:
        with self._pages_lock:
            if self._batch is batch:
                self._write_held(fail=False)  # a failure is kept: the stream's next page or its pass's end fail

    def _write_held(self, fail: bool = True) -> None:
        """Write the batch held, in one transaction. On failure nothing of it is stored: its stream's next page is
        refused (its state would claim the batch's pages) until its pass ends, and, with ``fail``, the failure is
        raised here."""
        batch, self._batch = self._batch, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if batch is None or not batch.pages:
            return
        try:
            with self._page_transaction() as conn:
                self._write(conn, batch)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StoreError) else f"cannot write to {self.describe()}: {exc}"
            held = len(batch.pages)
            self._lost[(batch.source, batch.stream)] = (
                f"{reason} (the {held} page{'s' if held > 1 else ''} of {batch.source}/{batch.stream} written "
                "together were not stored: the next run reads them again)")
            if fail:
                raise StoreError(self._lost[(batch.source, batch.stream)]) from None

    def _write(self, conn: Connection, batch: Batch) -> None:
        """A batch's rows, its pages' rejects in order, and the last page's state, in ``conn``'s transaction."""
        duck = driver(conn)
        write_batch(duck, batch)
        for page in batch.pages:
            self._settle_rejects(conn, duck, page)
        last = batch.pages[-1]
        self._save_state(conn, last.source, last.api, last.stream, last.state, last.at)

    def _settle_rejects(self, conn: Connection, duck: Duck, page: StagedPage) -> None:
        self._clear_page_rejects(duck, page.source, page.stream, page.clear_ids)
        if page.rejects:
            self._write_rejects(conn, page.source, page.stream, page.rejects)
            self._reject_free.discard((page.source, page.stream))

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

    def _clear_page_rejects(self, duck: Duck, source: str, stream: str, ids: list[str]) -> None:
        """:meth:`PageWrites._clear_rejects` while the stream has rejects stored. Whether it has is asked once per
        store: only this process writes a DuckDB file, and only a page of the stream adds to them."""
        if (source, stream) in self._reject_free or not ids:
            return
        held = duck.execute(f"SELECT count(*) FROM {rejects.name} WHERE source = ? AND stream = ?",
                            (source, stream)).fetchone()[0]
        if not held:
            self._reject_free.add((source, stream))
            return
        duck.execute(f"DELETE FROM {rejects.name} WHERE source = ? AND stream = ? AND list_contains(?, reject_key)",
                     (source, stream, ids))
