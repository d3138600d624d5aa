"""The Store: one destination, as a sync uses it. Opened by :func:`ordersync.store.open_store`, which picks the
backend (SQLite, PostgreSQL, DuckDB) from the URL.

A store is assembled from parts, each with one job and its own module: opening the database
(:mod:`~ordersync.store.database`), writing a page with its state (:mod:`~ordersync.store.pages`), the run log
and the sources' locks (:mod:`~ordersync.store.runs`) and the reads (:mod:`~ordersync.store.reads`). This class is
the writing part's front: it sends pages to a writer process (:mod:`~ordersync.store.writer`) where the database
allows it, or writes them in the caller's thread. Either way a page's rows and its state commit in one
transaction, and :meth:`Store.write_page` returns only once they have.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from ordersync.errors import StoreError
from ordersync.store.pages import PageWrites
from ordersync.store.reads import Reads
from ordersync.store.rows import PreparedPage, Reject, State, WriteResult, prepare_page
from ordersync.store.runs import RunLog
from ordersync.store.writer import WriterProcess


class Store(PageWrites, RunLog, Reads):
    """One destination database. Thread-safe: the engine calls it from worker threads, one per source."""

    _writer: WriterProcess | None = None

    def __init__(self, url: str, **options: Any) -> None:
        """``options``: see :class:`ordersync.store.database.Database` (and each backend's own)."""
        self._failed_sequences: set[str] = set()  # in a writer process: page sequences that stopped on a failure
        super().__init__(url, **options)

    # --- what each backend says about its writer ------------------------------------------------------------
    def shares_database(self) -> bool:
        """Whether another process opening ``url`` sees this same database (so that it can write the pages)."""
        return False

    def answer_wait(self) -> float | None:
        """How long the sync process waits for its writer process's next answer while pages are pending (None: no
        bound; a file database cannot freeze as a server can)."""
        return None

    def stalled(self) -> str:
        """The one line of a writer process that did not answer within :meth:`answer_wait`."""
        return f"the process writing to {self.describe()} stopped answering: run the sync again"

    # --- the writer process ---------------------------------------------------------------------------------
    def start_writer(self) -> None:
        """Write pages in a second process from now on (see :mod:`ordersync.store.writer`), where the database
        allows it; else in the caller's thread, as before. It starts in the background: the first page waits.

        A writer that has died (killed by the out-of-memory killer, say) is replaced: call this before each sync
        of a long-lived store (watch mode does, each round). Only between syncs: within one, the pages after a lost
        one must not be written (the writer refuses them by sequence, and a new writer would not know)."""
        if self._writer is not None and not self._writer.alive:
            self._writer.close()
            self._writer = None
        if self._writer is None and self.shares_database():
            self._writer = WriterProcess(self.url, self.options, self.describe(), self.answer_wait(), self.stalled())

    def close(self) -> None:
        """Stop the writer process (after the pages it holds), release the locks, close the database."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        super().close()

    @property
    def writes_elsewhere(self) -> bool:
        """Whether pages go to a writer process: then :meth:`submit_page` queues them without waiting."""
        return self._writer is not None

    def writer_cpu_seconds(self) -> float | None:
        """The writer process's CPU time so far (as of its last answer), or None without one."""
        return self._writer.cpu_seconds if self._writer is not None else None

    def hash_before_writing(self) -> bool:
        """Whether the sync process hashes a page's rows (see :meth:`submit_page`): when its writer process has
        worked more so far. The two share two cores and a sync lasts as long as the busier one. (A full queue is
        no sign: it was full for PostgreSQL while its commits waited for the disk.)"""
        return (self.writer_cpu_seconds() or 0.0) > time.process_time()

    # --- pages ----------------------------------------------------------------------------------------------
    def write_page(self, source: str, api: str, stream: str, rows: Any, state: State, *,
                   rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        """Write one page's rows, its rejected records and the state that covers them, atomically; say what was
        new or changed. ``rows`` has lists ``orders``, ``order_lines``, ``customers`` and ``payments``.

        With a writer process (:meth:`start_writer`) the page is stored there; this returns once it is committed."""
        if self._writer is not None:
            result: dict[str, WriteResult] = self.submit_page(None, source, api, stream, rows, state,
                                                              rejects=rejects).result()
            return result
        return self.write_prepared(source, api, stream, prepare_page(rows), state, rejects)

    def submit_page(self, sequence: str | None, source: str, api: str, stream: str, rows: Any, state: State, *,
                    rejects: Sequence[Reject] = (), hashed: bool = False) -> Future[dict[str, WriteResult]]:
        """Queue a page for the writer process (see :meth:`start_writer`); pages are written in the order they are
        queued, each in its own transaction. Once a page of ``sequence`` fails, the later pages of that sequence
        are refused, not written: their state would claim the failed page's records. ``hashed``: hash the rows
        here (the caller knows the writer is the slower of the two processes)."""
        assert self._writer is not None, "submit_page needs a writer process (start_writer)"
        return self._writer.submit("write_in_sequence", sequence, source, api, stream, prepare_page(rows, hashed),
                                   state, list(rejects))

    def write_in_sequence(self, sequence: str | None, source: str, api: str, stream: str, page: PreparedPage,
                          state: State, rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        """:meth:`write_prepared` in the writer process, unless an earlier page of ``sequence`` failed."""
        if sequence is not None and sequence in self._failed_sequences:
            raise StoreError(f"not written: an earlier page of this sync of {source} failed")
        try:
            return self.write_prepared(source, api, stream, page, state, rejects)
        except BaseException:
            if sequence is not None:
                self._failed_sequences.add(sequence)
            raise

    def start_in_sequence(self, sequence: str | None, source: str, api: str, stream: str, page: PreparedPage,
                          state: State, rejects: Sequence[Reject] = ()) -> Future[dict[str, WriteResult]]:
        """:meth:`write_in_sequence`, started in call order; the writer process answers each page's future in that
        order. Here it is written before this returns; PostgreSQL starts the next page while one is in flight."""
        future: Future[dict[str, WriteResult]] = Future()
        try:
            future.set_result(self.write_in_sequence(sequence, source, api, stream, page, state, rejects))
        except Exception as exc:
            future.set_exception(exc)
        return future
