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
write at the same time.) A log that started over since the last checkpoint is told by the checkpoint sequence
number in its header, which SQLite counts up each time: read from the ``-wal`` file, on which SQLite takes no lock,
through one descriptor kept open as long as the thread's connection (which keeps the file from being deleted).
Without it, a log that started over and grew past its former length looked as if a few pages had been added, and
the next checkpoint came ten times too late.

Starting the log over. SQLite writes the log from its start again, instead of making it longer, only when a
transaction begins while every page in it has been copied back. A checkpoint beside the writer never quite
achieves that: pages commit while it copies. Leaving the last pages to SQLite's own checkpoint in the writer's
commit did not work either: only one checkpoint runs at a time, so whenever the thread's was still running at a
commit, the writer's found it busy and gave up silently; the thread, woken by each commit, fell into step with the
writer, and the log grew for the rest of the sync (28 MB of log beside a 9.4 MB database in a test, one run in six
on a loaded machine). The last pages are therefore handed over, under an invariant that holds whatever the
threads' scheduling:

1. One checkpoint of this process at a time: the thread's and the writer's take turns (``_turn``), so neither
   finds the other's running and gives up.
2. Once a checkpoint of the thread finds ``RESTART_AFTER * frames`` pages or more in the log, the thread starts no
   other (it stands aside, ``_due``) until the writer has copied the rest.
3. The writer copies the rest after a commit and before its next transaction begins: the store holds its write
   lock from a page's ``BEGIN`` to then, so nothing of this process commits in between, and the copy leaves the
   whole log copied back. The transaction that follows starts the log over.
4. The writer never waits for one of the thread's checkpoints, unless the log has reached ``2 * RESTART_AFTER *
   frames`` pages by the thread's count of the pages a commit adds (a checkpoint that lasted ``RESTART_AFTER *
   frames`` pages of commits: a disk that cannot keep up); then it waits for it to end and copies the rest.

So the log never holds more than ``2 * RESTART_AFTER * frames`` pages and one commit's (by that count); normally
it starts over at ``RESTART_AFTER * frames`` and a commit or two (some 170 MB by default), the writer copying those
commits' pages once in about ``RESTART_AFTER`` checkpoints of the thread. Only another process can keep pages in
the log (a reader of an older snapshot, a checkpoint of its own): the writer then tries again after each commit,
as SQLite's own checkpoint would.

When the store closes, a last checkpoint copies the rest and empties the log (``TRUNCATE``). SQLite's own
checkpoint at the last close runs only when no other connection has the file open; with one open (``ordersync
demo``'s summary, a dashboard, an orchestrator's process) up to a whole log stayed beside the file.

Durability is SQLite's own: the same ``synchronous`` setting, the same checkpoints, in another thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

FINAL_WAIT_MS = 1000
RESTART_AFTER = 2  # the log starts over once it holds this many times ``frames`` pages (and a commit or two)
PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"


class Measured(NamedTuple):
    """The log as the last checkpoint left it (replaced whole, so the writer reads it between two threads' writes
    without a lock)."""

    commits: int  # the writer's commits up to it
    log: int  # pages in the log then
    per_commit: float | None  # pages of log a commit adds (None: no checkpoint yet)

    def log_after(self, commits: int) -> float:
        """The pages in the log after ``commits`` commits in all, by this count."""
        return self.log + (commits - self.commits) * (self.per_commit or 0.0)


class Checkpointer:
    """Copies the log of ``path`` back into the database about every ``frames`` pages of log; the writer calls
    :meth:`committed` after each commit, before its next transaction begins."""

    def __init__(self, path: Path, pragmas: Iterable[str], frames: int) -> None:
        self.path = path
        self.frames = frames
        self.pragmas = tuple(pragmas)
        self.checkpoints = 0  # how many the thread ran (what a test sees)
        self.restarts = 0  # how many times the writer copied the rest, so that the log started over
        self._commits = 0
        self._measured = Measured(0, 0, None)
        self._conn: sqlite3.Connection | None = None
        self._turn = threading.Lock()  # held by whoever checkpoints: the thread or the writer
        self._due = threading.Event()  # the writer's turn: the thread stands aside until the writer clears it
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ordersync-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Called by the writer after each commit: copies the rest of the log when it is due (the thread stands
        aside), or when it has grown to twice that all the same (then after the thread's checkpoint running)."""
        self._commits += 1  # only the writer's thread counts (under the store's write lock)
        if self._due.is_set() or self._measured.log_after(self._commits) >= 2 * RESTART_AFTER * self.frames:
            with self._turn:
                self._copy_the_rest()
        self._wake.set()

    def close(self) -> None:
        """Copy what is left in the log into the database and empty the log, then stop."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _copy_the_rest(self) -> None:
        """The writer's checkpoint, the only one of this process running: all copied back means the next
        transaction starts the log over. Busy, or not all copied (another process reads an older snapshot): the
        next commit tries again."""
        assert self._conn is not None  # the thread connected before it first measured the log
        try:
            busy, log, copied = self._conn.execute(PASSIVE).fetchone()
        except sqlite3.Error:
            return
        if busy == 0 and copied == log:
            self._measured = Measured(self._commits, 0, self._measured.per_commit)
            self.restarts += 1
            self._due.clear()

    def _run(self) -> None:
        conn = self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            with LogHeader(Path(f"{self.path}-wal")) as header:
                sequence = header.sequence()
                while not self._closing:
                    self._wake.wait()
                    self._wake.clear()
                    with self._turn:
                        sequence = self._checkpoint_if_due(conn, header, sequence)
                with self._turn:
                    self._empty_the_log(conn)
        finally:
            conn.close()

    def _checkpoint_if_due(self, conn: sqlite3.Connection, header: LogHeader, sequence: int | None) -> int | None:
        """A checkpoint when about ``frames`` pages of log have been added since the last, unless the writer's is
        due; the log's restarts counted up to it (``sequence``) are returned."""
        last = self._measured
        commits = self._commits - last.commits
        if self._closing or self._due.is_set() or (last.per_commit is not None
                                                   and commits * last.per_commit < self.frames):
            return sequence
        try:
            _busy, now, _copied = conn.execute(PASSIVE).fetchone()
        except sqlite3.Error:  # busy (another process's checkpoint) or gone: the next commit tries again
            return sequence
        started_over = sequence != (sequence := header.sequence()) or now < last.log
        grown = now if started_over else now - last.log  # started over in between: at least ``now``
        self._measured = Measured(last.commits + commits, now, max(1.0, grown / max(1, commits)))
        self.checkpoints += 1
        if now >= RESTART_AFTER * self.frames:
            self._due.set()
        return sequence

    @staticmethod
    def _empty_the_log(conn: sqlite3.Connection) -> None:
        """The last checkpoint: every page into the database file and the log cut to nothing, so that the file
        alone holds the sync (a copy of it is complete) and no log is left on disk. SQLite's own checkpoint at the
        last close does not run while another connection has the file open. Another process reading or writing at
        that moment is waited for a second at most; then the log stays."""
        conn.execute(f"PRAGMA busy_timeout = {FINAL_WAIT_MS}")
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


class LogHeader:
    """The checkpoint sequence number in the header of the log (``-wal``): SQLite counts it up each time the log
    starts over. The file stays open while in use (closing a file of the database would drop SQLite's POSIX locks
    on it, were there any: there are none on the log) and is read with ``pread``; no file (yet), no number."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> LogHeader:
        with contextlib.suppress(OSError):
            self._fd = os.open(self.path, os.O_RDONLY)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def sequence(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return int.from_bytes(os.pread(self._fd, 4, 12), "big")
        except OSError:
            return None
