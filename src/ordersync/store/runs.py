"""The run log and the sources' locks: one sync per source at a time, and each run logged from start to end.

A lock is taken again by the same store as a count (a run holds it, and so may the caller around the runs); it is
released when the count returns to zero. How a lock is held is the backend's (:mod:`ordersync.store.locks`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from ordersync.store.database import Database
from ordersync.store.locks import SourceLock
from ordersync.store.rows import WriteResult, now_utc
from ordersync.store.tables import runs


class RunLog(Database):
    """Locks per source, counted, and the runs logged in ``_ordersync_runs`` under them."""

    def __init__(self, url: str, **options: Any) -> None:
        self._locks: dict[str, tuple[SourceLock, int]] = {}
        self._locks_guard = threading.Lock()
        self._own_runs: set[int] = set()
        self._run_clocks: dict[int, float] = {}  # run id -> when it started, on the monotonic clock
        super().__init__(url, **options)

    def _acquire(self, source: str) -> SourceLock:
        """Wait up to ``lock_wait`` seconds for the lock of ``source`` (each backend holds it its own way)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def locked(self, sources: Iterable[str]) -> Iterator[None]:
        """Hold the sync lock of each source for the block (waiting up to ``lock_wait`` seconds for each)."""
        taken: list[str] = []
        try:
            for source in sources:
                self.lock(source)
                taken.append(source)
            yield
        finally:
            for source in taken:
                self.unlock(source)

    def lock(self, source: str) -> None:
        """Take (or take again: it counts) the lock that lets one process at a time sync ``source``."""
        with self._locks_guard:
            held = self._locks.get(source)
            if held:
                self._locks[source] = (held[0], held[1] + 1)
                return
        lock = self._acquire(source)
        with self._locks_guard:
            self._locks[source] = (lock, 1)

    def unlock(self, source: str) -> None:
        with self._locks_guard:
            held = self._locks.get(source)
            if not held:
                return
            if held[1] > 1:
                self._locks[source] = (held[0], held[1] - 1)
                return
            del self._locks[source]
        held[0].release()

    def start_run(self, source: str, stream: str) -> int:
        """Log a run as ``running``, under the source's lock; runs left ``running`` by a dead process (they
        cannot be alive: we hold the lock) become ``interrupted``."""
        self.lock(source)
        try:
            with self.transaction() as conn:
                stale = runs.update().where(runs.c.source == source, runs.c.status == "running")
                if self._own_runs:
                    stale = stale.where(runs.c.run_id.not_in(list(self._own_runs)))
                conn.execute(stale.values(status="interrupted"))
                result = conn.execute(runs.insert().values(source=source, stream=stream, started_at=now_utc(),
                                                           status="running"))
                run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except BaseException:
            self.unlock(source)
            raise
        self._own_runs.add(run_id)
        self._run_clocks[run_id] = time.monotonic()
        return run_id

    def finish_run(self, run_id: int, status: str, rows: WriteResult, requests: int, error: str | None = None, *,
                   orders: WriteResult | None = None, customers: WriteResult | None = None) -> None:
        """Log the end of run ``run_id``: its status, its rows (``rows``: orders and customers together; with
        ``orders`` and ``customers`` each apart too), requests, error, and its duration to the millisecond (from
        :meth:`start_run` on this store's clock; not a difference of the whole seconds stored)."""
        started = self._run_clocks.pop(run_id, None)
        apart: dict[str, int | None] = {}
        for kind, counts in (("orders", orders), ("customers", customers)):
            for name in ("new", "changed", "unchanged"):
                apart[f"{kind}_{name}"] = getattr(counts, name) if counts is not None else None
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                finished_at=now_utc(), status=status, new_rows=rows.new, changed_rows=rows.changed,
                unchanged_rows=rows.unchanged, requests=requests, error=error, **apart,
                duration_ms=round((time.monotonic() - started) * 1000) if started is not None else None,
            ))
            source = conn.execute(sa.select(runs.c.source).where(runs.c.run_id == run_id)).scalar()
        self._own_runs.discard(run_id)
        if source is not None:
            self.unlock(source)

    def close(self) -> None:
        """Release every lock still held, then close the database."""
        with self._locks_guard:
            for lock, _count in self._locks.values():
                lock.release()
            self._locks.clear()
        super().close()
