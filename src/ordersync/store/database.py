"""A destination database, opened: its engine, its tables created or upgraded (or, read-only, checked), its write
transaction and its errors as one line.

Every part of the store works through this one class: the page writes (:mod:`ordersync.store.pages`), the run
log and locks (:mod:`ordersync.store.runs`) and the reads (:mod:`ordersync.store.reads`), and the backends say
here how they connect (``_connect``) and what their errors mean.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync.errors import StoreError
from ordersync.store import migrations

DEFAULT_LOCK_WAIT = 30.0


class Database:
    """One destination database; thread-safe (the engine calls it from worker threads, one per source)."""

    scheme: ClassVar[str] = ""
    url: str
    engine: Engine

    def __init__(self, url: str, *, schema: str | None = None, lock_wait: float = DEFAULT_LOCK_WAIT,
                 create: bool = True, history: bool = True, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only  # status, export, history: open read-only, create nothing, upgrade nothing
        self.history = history  # keep order_versions; off only to measure what it costs
        self.schema = schema
        self.lock_wait = lock_wait
        self._write_lock = threading.RLock()  # reentrant: SQLite's pages hold it past the commit (checkpoint.py)
        self.engine = self._connect(create and not read_only)
        if read_only:
            self.found_version = self._check_readable()
            return
        with self._disposed_on_error():
            self.found_version = migrations.prepare(self.engine, self._migration_lock(), self._migration_tx_lock,
                                                    self.describe())

    @contextlib.contextmanager
    def _disposed_on_error(self) -> Iterator[None]:
        """Opening failed: let no connection outlive it, and say why in one line (a database error's own)."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise self._open_error(exc) from None
        except BaseException:
            self.engine.dispose()
            raise

    def _check_readable(self) -> int:
        """The schema version of a database opened read-only, or one line saying why there is nothing to read
        there (no ordersync tables: the wrong database or schema, or no sync yet) or why it cannot be read as it is."""
        with self._disposed_on_error(), self.engine.connect() as conn:
            found = migrations.read_version(conn)
        problem = None
        if found is None:
            problem = (f"{self.describe()} holds no ordersync tables, so there is nothing to read: check the url "
                       "(and schema), or run 'ordersync sync' first")
        elif found > migrations.LATEST:
            problem = (f"{self.describe()} was written by a newer ordersync (schema {found}): upgrade ordersync "
                       "(pip install -U ordersync) to read it")
        elif found < migrations.LATEST:
            problem = (f"{self.describe()} was written by an older ordersync (schema {found}): run 'ordersync sync' "
                       "once to upgrade it, then read it")
        if problem or found is None:
            self.engine.dispose()
            raise StoreError(problem or "unreachable")
        return found

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments this store was opened with: what its writer process opens it with."""
        return {"schema": self.schema, "lock_wait": self.lock_wait, "history": self.history}

    # --- what each backend provides -------------------------------------------------------------------------
    def describe(self) -> str:
        """The destination for messages: never with a password."""
        return self.url

    def _connect(self, create: bool) -> Engine:
        """The engine of this database (created when ``create``): each backend's own."""
        raise TypeError(f"{type(self).__name__} is no database of its own: open a destination with "
                        "ordersync.store.open_store(url), which picks the backend the url names")

    def _migration_lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def _migration_tx_lock(self, conn: Connection) -> None:
        """Called first in each migration transaction (PostgreSQL takes a transaction-level lock there)."""

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sa.exc.OperationalError,)

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the destination {self.describe()}: {self._reason(exc)}")

    def _reason(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", exc)
        return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__

    # --- connections ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (serialized within this process: every database here takes one writer anyway)."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except self._errors() as exc:
            raise StoreError(f"cannot write to {self.describe()}: {self._reason(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()
