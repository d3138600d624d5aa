"""SQLite's checkpoints in a thread of their own, so that the process writing the pages never waits for them.

In WAL mode a commit appends the changed pages to the ``-wal`` file, and a checkpoint copies them back into the
database file, then waits for the disk (``fsync``). By default the connection that commits runs the checkpoint
inside its commit: the writer stops for it. A sync into SQLite spent a quarter of its writer's time there (e-guma,
whose random keys change 10 MB of index pages per page of 500 orders: 2.5 of 10 s at 100,000 orders waiting for
the disk alone).

:class:`Checkpointer` runs them beside the writer instead, on a connection of its own: a ``PASSIVE`` checkpoint
never takes the write lock, so pages keep committing while the log is copied back, and SQLite releases Python's
interpreter lock while it works. It checkpoints about every ``frames`` pages of log (what the writer's own
``wal_autocheckpoint`` did): each checkpoint says how long the log has grown, hence how many pages of log a commit
adds, hence after how many commits the next one is due. (The log's length is not read from the ``-shm`` file: a
process that opens and closes a database's files loses SQLite's POSIX locks on them, and another process may then
write at the same time.)

The log starts over (instead of growing) only when a writer begins while every page in it has been copied back,
which a checkpoint running beside the writer never quite achieves: the writer's own checkpoint, at four times
``frames``, copies the last pages (those committed during the checkpoint here) and so starts the log over. The log
therefore peaks at four times ``frames`` pages and a page or two (about 200 MB by default), and the writer
checkpoints once in four, for a page or two each time.

When the store closes, a last checkpoint copies the rest and empties the log (``TRUNCATE``). SQLite's own
checkpoint at the last close runs only when no other connection has the file open; with one open (``ordersync
demo``'s summary, a dashboard, an orchestrator's process) up to a whole log stayed beside the file.

Durability is SQLite's own: the same ``synchronous`` setting, the same checkpoints, in another thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

FINAL_WAIT_MS = 1000


class Checkpointer:
    """Copies the log of ``path`` back into the database about every ``frames`` pages of log; the writer calls
    :meth:`committed` after each commit."""

    def __init__(self, path: Path, pragmas: Iterable[str], frames: int) -> None:
        self.path = path
        self.frames = frames
        self.pragmas = tuple(pragmas)
        self.checkpoints = 0  # how many ran (what a test sees)
        self._commits = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ordersync-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._commits += 1  # only the writer's thread counts
        self._wake.set()

    def close(self) -> None:
        """Copy what is left in the log into the database and empty the log, then stop."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            seen = 0  # commits up to the last checkpoint
            log = 0  # pages in the log after it
            per_commit: float | None = None  # pages of log a commit adds (None: no checkpoint yet, learn it now)
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    self._empty_the_log(conn)
                    return
                commits = self._commits - seen
                if per_commit is not None and commits * per_commit < self.frames:
                    continue
                try:
                    _busy, now, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy or gone: the writer's own checkpoint remains
                    continue
                grown = now - log if now >= log else now  # the log started over in between: at least ``now``
                per_commit = max(1.0, grown / max(1, commits))
                seen, log = seen + commits, now
                self.checkpoints += 1
        finally:
            conn.close()

    @staticmethod
    def _empty_the_log(conn: sqlite3.Connection) -> None:
        """The last checkpoint: every page into the database file and the log cut to nothing, so that the file
        alone holds the sync (a copy of it is complete) and no log is left on disk. SQLite's own checkpoint at the
        last close does not run while another connection has the file open. Another process reading or writing at
        that moment is waited for a second at most; then the log stays."""
        conn.execute(f"PRAGMA busy_timeout = {FINAL_WAIT_MS}")
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
