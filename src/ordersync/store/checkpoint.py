"""SQLite's checkpoints in a thread of their own, so that the process writing the pages never waits for them.

In WAL mode a commit appends the changed pages to the ``-wal`` file, and a checkpoint copies them back into the
database file, then waits for the disk (``fsync``). By default the connection that commits runs the checkpoint
inside its commit: the writer stops for it. A sync into SQLite spent a quarter of its writer's time there (e-guma,
whose random keys change 10 MB of index pages per page of 500 orders: 2.5 of 10 s at 100,000 orders waiting for
the disk alone).

:class:`Checkpointer` runs them beside the writer instead, on a connection of its own: a ``PASSIVE`` checkpoint
never takes the write lock, so pages keep committing while the log is copied back, and SQLite releases Python's
interpreter lock while it works. It checkpoints once ``frames`` pages wait in the log (what the writer's own
``wal_autocheckpoint`` did), read from the WAL-index header (SQLite's documented ``-shm`` format).

The log starts over (instead of growing) only when a writer begins while every page in it has been copied back,
which a checkpoint running beside the writer never quite achieves: the writer's own checkpoint, at four times
``frames``, copies the last pages (those committed during the checkpoint here) and so starts the log over. The log
therefore peaks at about four times ``frames`` pages (160 MB by default) and the writer checkpoints once in four,
for a page or two each time.

Durability is SQLite's own: the same ``synchronous`` setting, the same checkpoints, in another thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import threading
from collections.abc import Iterable
from pathlib import Path

# The WAL-index header (https://www.sqlite.org/walformat.html): ``mxFrame``, the last frame in the log, at byte 16,
# and ``nBackfill``, the last frame copied back into the database, at byte 96; native byte order.
_MX_FRAME = struct.Struct("=I")
_MX_FRAME_AT, _BACKFILL_AT = 16, 96


class Checkpointer:
    """Copies the log of ``path`` back into the database whenever ``frames`` pages wait in it; :meth:`committed`
    after each commit says when to look."""

    def __init__(self, path: Path, pragmas: Iterable[str], frames: int) -> None:
        self.path = path
        self.frames = frames
        self.pragmas = tuple(pragmas)
        self.checkpoints = 0  # how many ran (what a test sees)
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ordersync-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Stop after the checkpoint under way, if any (the database's last connection checkpoints what is left
        when it closes)."""
        self._closing = True
        self._wake.set()
        self._thread.join()

    def waiting(self) -> int | None:
        """Pages in the log not yet copied back, or None when the WAL index cannot be read."""
        try:
            with open(f"{self.path}-shm", "rb") as shm:
                header = shm.read(_BACKFILL_AT + 4)
        except OSError:
            return None
        if len(header) < _BACKFILL_AT + 4:
            return None
        return _MX_FRAME.unpack_from(header, _MX_FRAME_AT)[0] - _MX_FRAME.unpack_from(header, _BACKFILL_AT)[0]

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                waiting = self.waiting()
                if waiting is None or waiting >= self.frames:
                    with contextlib.suppress(sqlite3.Error):  # busy or gone: the writer's own checkpoint remains
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.checkpoints += 1
        finally:
            conn.close()
