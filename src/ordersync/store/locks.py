"""One sync per source at a time, across processes: the operating system or the server drops a dead holder's lock.

SQLite and DuckDB: an exclusive ``flock`` on a small file per source beside the database (``<db>.locks/``); the
kernel releases it when the holding process ends, killed or not. PostgreSQL: a session-level advisory lock held by
a connection of its own; the server releases it when that connection closes, which a killed process's does.
Either way the second process waits up to ``wait`` seconds, then gets one line naming the source and the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ordersync.errors import StoreError

POLL_SECONDS = 0.1


class LockBusy(StoreError):
    """Another process syncs this source right now."""


def holder_label() -> str:
    """Who holds a lock, as other processes are told: process id, host and since when."""
    return f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"


def busy(source: str, holder: str, wait: float) -> LockBusy:
    return LockBusy(f"source '{source}' is being synced by another ordersync ({holder}); waited {wait:g}s: "
                    "run again when it has finished (two syncs of one source never run at once)")


class SourceLock(Protocol):
    def release(self) -> None: ...


class FileLock:
    """An exclusive lock on ``path``, waiting at most ``wait`` seconds; the file says who holds it."""

    def __init__(self, path: Path, name: str, wait: float) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {path}: {exc.strerror}; syncs need a writable folder "
                             "beside the database") from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(self._fd, 400, 0).decode(errors="replace").strip() or "another process"
                    os.close(self._fd)
                    raise busy(name, holder, wait) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, holder_label().encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1


def lock_file(database: Path, name: str) -> Path:
    """The lock file of one source (or ``_schema``) of one database file."""
    return database.parent / f"{database.name}.locks" / f"{quote(name, safe='')}.lock"


@contextlib.contextmanager
def file_lock(path: Path, name: str, wait: float) -> Iterator[None]:
    lock = FileLock(path, name, wait)
    try:
        yield
    finally:
        lock.release()


def advisory_key(namespace: str, name: str) -> tuple[int, int]:
    """Two int4 keys for ``pg_advisory_lock``: one for ordersync and the schema, one for the source."""
    def signed(value: int) -> int:
        return value - 2**32 if value >= 2**31 else value

    return signed(zlib.crc32(f"ordersync:{namespace}".encode())), signed(zlib.crc32(name.encode()))


class PgAdvisoryLock:
    """A session advisory lock on a connection of its own (``connection`` is a psycopg connection, autocommit)."""

    def __init__(self, connection: Any, namespace: str, name: str, wait: float) -> None:
        self._conn = connection
        self._key = advisory_key(namespace, name)
        deadline = time.monotonic() + wait
        while not connection.execute("SELECT pg_try_advisory_lock(%s, %s)", self._key).fetchone()[0]:
            if time.monotonic() >= deadline:
                holder = self._holder() or "another process"
                connection.close()
                raise busy(name, holder, wait)
            time.sleep(POLL_SECONDS)

    def _holder(self) -> str | None:
        row = self._conn.execute(
            "SELECT a.application_name, a.client_addr::text, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = (%s::int)::oid AND l.objid = (%s::int)::oid AND l.objsubid = 2", self._key,
        ).fetchone()
        if not row:
            return None
        name, addr, since = row
        where = f", connected from {addr.split('/')[0]}" if addr else ""
        return f"{name or f'a session connected since {since:%Y-%m-%d %H:%M:%S}'}{where}"

    def release(self) -> None:
        if not self._conn.closed:
            self._conn.close()  # ends the session, which drops the lock
