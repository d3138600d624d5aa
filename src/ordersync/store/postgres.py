"""PostgreSQL (psycopg 3): the destination for teams. Bulk pages through COPY; per-source advisory locks.

This module connects: every wait on the server bounded (:mod:`ordersync.store.bounds`), a refusal explained
(:mod:`ordersync.store.postgres_errors`), a lock per source on a session of its own. Pages are written two in
flight (:mod:`ordersync.store.postgres_flight`) by COPY (:mod:`ordersync.store.postgres_copy`) and commit without
waiting for the disk; a run's end waits for it, and with it for every page before. The password comes from the
URL (``${VAR}`` in the configuration), from libpq's own environment (``PGPASSWORD``) or from ``~/.pgpass``; it is
never shown.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL

from ordersync.errors import StoreError
from ordersync.store.bounds import PgBounds
from ordersync.store.locks import PgAdvisoryLock, SourceLock, advisory_key, holder_label
from ordersync.store.pg_connection import BoundedConnection
from ordersync.store.postgres_errors import explain
from ordersync.store.postgres_flight import PgPagesInFlight
from ordersync.store.urls import redact

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _json_as_text(dbapi_connection: Any, record: Any) -> None:
    """A new connection reads ``json`` values as their text, as stored (psycopg would parse them into objects,
    and rendering those again would not give the vendor's text back)."""
    from psycopg.types.string import TextLoader

    dbapi_connection.adapters.register_loader("json", TextLoader)


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


class PostgresStore(PgPagesInFlight):
    """A PostgreSQL destination: its connections (every wait on the server bounded, see
    :mod:`ordersync.store.bounds`), its errors with what to check, and its locks (advisory, on connections of their
    own). Its pages are written in flight (:mod:`ordersync.store.postgres_flight`) by COPY
    (:mod:`ordersync.store.postgres_copy`)."""

    scheme = "postgresql"

    def __init__(self, url: str, *, connect_timeout: float | None = None, statement_timeout: float | None = None,
                 lock_timeout: float | None = None, **options: Any) -> None:
        """``connect_timeout``, ``statement_timeout``, ``lock_timeout``: see :mod:`ordersync.store.bounds` (None:
        the default of each)."""
        given = {"connect": connect_timeout, "statement": statement_timeout, "lock": lock_timeout}
        self.bounds = PgBounds(**{k: v for k, v in given.items() if v is not None})
        super().__init__(url, **options)

    @property
    def options(self) -> dict[str, Any]:
        """As every store's, with the bounds: the writer process waits as long as this one."""
        return {**super().options, "connect_timeout": self.bounds.connect,
                "statement_timeout": self.bounds.statement, "lock_timeout": self.bounds.lock}

    def answer_wait(self) -> float | None:
        return self.bounds.answer_wait()

    def stalled(self) -> str:
        return (f"the process writing to PostgreSQL at {_where(self._url)} did not answer for "
                f"{self.bounds.answer_wait():g}s: the server is frozen or unreachable, or that process is stuck: "
                "check that the server runs and can be reached from here, then run the sync again; nothing after "
                "the last committed page was stored")

    def hash_before_writing(self) -> bool:
        """Always: the writer's part of a page includes the server's work on it, which the writer's CPU time does
        not show (3.3 of Firespring's 12.6 CPU seconds, with the server on the same machine). Hashing in the sync
        process made Firespring 7% faster into PostgreSQL, Prio 4%, e-guma 2%, and Frontcore no slower."""
        return True

    def describe(self) -> str:
        return self._url.render_as_string(hide_password=True).replace("postgresql+psycopg://", "postgresql://")

    def _connect(self, create: bool) -> Engine:
        try:
            url = make_url(self.url)
        except sa.exc.ArgumentError:
            raise StoreError(f"'{redact(self.url)}' is not a PostgreSQL url: use postgresql://USER@HOST:5432/DB"
                             ) from None
        self._url = url.set(drivername="postgresql+psycopg")
        if self.schema is not None and not _IDENTIFIER.match(self.schema):
            raise StoreError(f"[destination] schema '{self.schema}' is not a plain name (letters, digits, _)")
        self._namespace = f"{url.host}/{url.database}/{self.schema or 'public'}"
        # lz4 compresses the large raw documents several times faster than PostgreSQL's default pglz
        options = "-c TimeZone=UTC -c default_toast_compression=lz4" + self.bounds.server_options()
        if self.schema:
            options += f" -c search_path={self.schema}"
        if self.read_only:  # status, export, history: the server refuses any write, a stray CREATE included
            options += " -c default_transaction_read_only=on"
        self._connect_args: dict[str, Any] = {"options": options, "connect_timeout": max(1, round(self.bounds.connect))}
        engine = self._engine(options)
        self._pages = self._engine(options + " -c synchronous_commit=off")  # see PgPagesInFlight
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.OperationalError as exc:
            engine.dispose()
            self._pages.dispose()
            raise self._connection_failed(exc) from None
        return engine

    def _engine(self, options: str) -> Engine:
        """An engine whose every connection waits for the server at most ``bounds.exchange_wait`` per exchange."""
        engine = sa.create_engine(self._url, connect_args={**self._connect_args, "options": options,
                                                           "application_name": "ordersync"})

        @sa.event.listens_for(engine, "do_connect")
        def _bounded(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            connection = BoundedConnection.connect(*cargs, **cparams)
            connection.exchange_wait = self.bounds.exchange_wait
            return connection

        sa.event.listen(engine, "connect", _json_as_text)
        return engine

    def _connection_failed(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot connect to PostgreSQL at {_where(self._url)} (database {self._url.database}, "
                          f"user {self._url.username}): {self._reason(exc)}")

    def _open_error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, sa.exc.OperationalError):
            return self._connection_failed(exc)
        return StoreError(f"cannot prepare the tables in {self.describe()}: {redact(self._reason(exc))}")

    def _reason(self, exc: BaseException) -> str:
        """The server's or libpq's message, with what to check where it is known (see
        :func:`ordersync.store.postgres_errors.explain`)."""
        return explain(redact(super()._reason(exc)), self._url, self.bounds)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sa.exc.OperationalError, sa.exc.InternalError)

    def _migration_tx_lock(self, conn: Connection) -> None:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, %s)", advisory_key(self._namespace, "_schema"))
        if self.schema:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    def _acquire(self, source: str) -> SourceLock:
        import psycopg

        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = BoundedConnection.connect(conninfo, autocommit=True, application_name=holder_label()[:63],
                                                   **self._connect_args)
        except psycopg.OperationalError as exc:
            raise self._connection_failed(exc) from None
        connection.exchange_wait = self.bounds.exchange_wait
        try:
            return PgAdvisoryLock(connection, self._namespace, source, self.lock_wait)
        except psycopg.Error as exc:  # the server stopped answering, or ended the session, while we waited
            connection.close()
            raise StoreError(f"cannot take the lock of source '{source}' in {self.describe()}: "
                             f"{self._reason(exc)}") from None

    def shares_database(self) -> bool:
        return True
