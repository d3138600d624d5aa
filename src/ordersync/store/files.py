"""What a destination that is one file needs (SQLite, DuckDB): its path from the URL, a clear line when the file or
its folder is missing, and locks that are files beside it (see :mod:`ordersync.store.locks`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ordersync.errors import StoreError
from ordersync.store.locks import FileLock, SourceLock, file_lock, lock_file


def database_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` or ``duckdb:///`` URL names; None for an in-memory database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return None if not path or path == ":memory:" else Path(path).expanduser().resolve()


def check_file(path: Path | None, create: bool) -> None:
    if path is None:
        return
    if not create and not path.is_file():
        raise StoreError(f"no database at {path}: check the path, or run 'ordersync sync' to create it")
    if not path.parent.is_dir():
        raise StoreError(f"cannot create the database {path}: the folder {path.parent} does not exist")


class FileLocks:
    """Source locks for a database that is one file (SQLite, DuckDB); in-memory databases need none."""

    path: Path | None
    lock_wait: float

    def _acquire(self, source: str) -> SourceLock:
        if self.path is None:
            return _NoLock()
        return FileLock(lock_file(self.path, source), source, self.lock_wait)

    def _migration_lock(self) -> contextlib.AbstractContextManager[object]:
        if self.path is None or not os.access(self.path.parent, os.W_OK):
            return contextlib.nullcontext()  # a read-only folder: nobody can upgrade it, reading needs no lock
        return file_lock(lock_file(self.path, "_schema"), "schema upgrade", max(self.lock_wait, 60.0))


class _NoLock:
    def release(self) -> None:
        pass
