"""Two PostgreSQL pages in flight, in the writer process: page n+1's rows go to the server on a second connection
(its own transaction) while page n's are still being stored, so that the writer's own work, its round trips and
the server's work of two pages overlap.

Pages still commit one after the other, in order, each with its state: page n+1 writes its state row only once
page n has committed, and not at all (it rolls back) when page n of the same sync failed. Where page n+1 writes a
key that page n writes too, it waits for page n to end before it looks that table's keys up: its "new",
"changed" and "unchanged" must see page n's rows, and its inserts must not collide with them (adjacent pages often
share a customer). Rejected records likewise.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync.errors import StoreError
from ordersync.store.postgres_copy import PgBulkWrites
from ordersync.store.rows import PreparedPage, Reject, State, WriteResult
from ordersync.store.tables import customers, orders


class _InFlight:
    """A page being written (by :meth:`PgPagesInFlight.start_in_sequence`): the keys it writes, the page started
    before it, and how it ended."""

    def __init__(self, sequence: str | None, source: str, page: PreparedPage, before: _InFlight | None) -> None:
        self.sequence = sequence
        self.source = source
        self.keys = {orders.name: {row["order_id"] for row in page.orders},
                     customers.name: {row["customer_id"] for row in page.customers}}
        self.before = before
        self.ended = threading.Event()
        self.committed = False

    def writes_any(self, source: str, table: str, keys: Sequence[str]) -> bool:
        mine = self.keys.get(table)
        return source == self.source and mine is not None and not mine.isdisjoint(keys)

    def end(self, committed: bool) -> None:
        """Ends once the page before it has: ended pages form an unbroken prefix of the pages started."""
        if self.before is not None:
            self.before.ended.wait()
        self.committed, self.before = committed, None
        self.ended.set()


class PgPagesInFlight(PgBulkWrites):
    """Pages started in order, up to :attr:`pages_in_flight` at once, each on its own page connection (``_pages``,
    the engine the backend opens with ``synchronous_commit = off``)."""

    pages_in_flight = 2
    _pages: Engine

    def __init__(self, url: str, **options: Any) -> None:
        self._flight = threading.local()  # .page: the page in flight this thread writes
        self._flight_guard = threading.Lock()
        self._flights: ThreadPoolExecutor | None = None
        self._last_flight: _InFlight | None = None
        super().__init__(url, **options)

    def start_in_sequence(self, sequence: str | None, source: str, api: str, stream: str, page: PreparedPage,
                          state: State, rejects: Sequence[Reject] = ()) -> Future[dict[str, WriteResult]]:
        with self._flight_guard:
            if self._flights is None:
                self._flights = ThreadPoolExecutor(self.pages_in_flight, thread_name_prefix="ordersync-page")
            mine = self._last_flight = _InFlight(sequence, source, page, self._last_flight)
            return self._flights.submit(self._write_in_flight, mine, sequence, source, api, stream, page, state,
                                        rejects)

    def _write_in_flight(self, mine: _InFlight, *args: Any) -> dict[str, WriteResult]:
        self._flight.page = mine
        committed = False
        try:
            result = self.write_in_sequence(*args)
            committed = True
            return result
        finally:
            self._flight.page = None
            mine.end(committed)

    def _wait_for_page_before(self, source: str = "", table: sa.Table | None = None, keys: Sequence[str] = ()) -> None:
        """In a page in flight: wait for the page started before it to end (always, or with ``table`` only when
        that page writes one of ``keys`` there), and refuse to go on when it was of the same sync and failed."""
        mine: _InFlight | None = getattr(self._flight, "page", None)
        before = mine.before if mine is not None else None
        if mine is None or before is None:
            return
        if table is not None and not before.writes_any(source, table.name, keys):
            return
        before.ended.wait()
        if not before.committed and before.sequence is not None and before.sequence == mine.sequence:
            raise StoreError(f"not written: an earlier page of this sync of {mine.source} failed")

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        """Last in a page's transaction, once the page before has committed: the commit follows it."""
        self._wait_for_page_before()
        super()._save_state(conn, source, api, stream, state, at)

    def _write_rejects(self, conn: Connection, source: str, stream: str, items: Sequence[Reject]) -> None:
        self._wait_for_page_before()  # rejected records are kept by record: the page before may hold the same
        super()._write_rejects(conn, source, stream, items)

    def _clear_rejects(self, conn: Connection, source: str, stream: str, ids: Sequence[str]) -> None:
        if ids:  # after the page before: it may reject one of these ids (stored now, so no longer rejected)
            self._wait_for_page_before()
            super()._clear_rejects(conn, source, stream, ids)

    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        self._wait_for_page_before(source, table, keys)
        return super()._existing_hashes(conn, table, key, source, keys)

    @contextlib.contextmanager
    def _page_transaction(self) -> Iterator[Connection]:
        """A page's transaction commits without waiting for the server's disk (``synchronous_commit = off`` on
        the page connections only). A crash of the server can roll back the last pages, each whole and with the
        state that covers it, so the next run reads them again: nothing is lost. The end of a run is written on
        the other connections, with the server's own setting (on by default): that commit waits for the log up to
        it, every page before it included, so a sync that has ended survives a crash of the server.

        A page in flight has its own connection and transaction, beside the other page's: the server serializes
        what must be (and the waits above keep the two pages' keys apart)."""
        try:
            in_flight = getattr(self._flight, "page", None) is not None
            with contextlib.nullcontext() if in_flight else self._write_lock, self._pages.begin() as conn:
                yield conn
        except self._errors() as exc:
            raise StoreError(f"cannot write to {self.describe()}: {self._reason(exc)}") from None

    def close(self) -> None:
        """The pages in flight end first (each commits or rolls back whole); then the store closes."""
        if self._flights is not None:
            self._flights.shutdown(wait=True)
        super().close()
        self._pages.dispose()
