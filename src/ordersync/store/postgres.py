"""PostgreSQL (psycopg 3): the destination for teams. Bulk pages through COPY; per-source advisory locks.

A page's changed rows are copied into a temporary staging table and merged with one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE``; child rows (lines, payments) are copied straight into their table
after the order's old ones are deleted. Pages commit without waiting for the disk; a run's end waits for it, and
with it for every page before (see :meth:`PostgresStore._page_transaction`). The password comes from the URL
(``${VAR}`` in the configuration), from libpq's own environment (``PGPASSWORD``) or from ``~/.pgpass``; it is
never shown.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL

from ordersync.errors import StoreError
from ordersync.store.base import PreparedPage, Reject, Row, State, Store, WriteResult, dumps, on_conflict_update
from ordersync.store.bounds import BoundedConnection, PgBounds
from ordersync.store.locks import PgAdvisoryLock, SourceLock, advisory_key, holder_label
from ordersync.store.tables import RawJson, customers, orders, stream_state
from ordersync.store.urls import redact

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _binary_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type whose binary form a COPY of ``column`` sends."""
    if isinstance(column.type, RawJson):
        return "bytea"  # the bytes as they are: json's binary input (json_recv) is the JSON text itself
    if isinstance(column.type, sa.Boolean):
        return "bool"
    if isinstance(column.type, sa.BigInteger):
        return "int8"
    if isinstance(column.type, sa.Integer):
        return "int4"
    if isinstance(column.type, sa.DateTime):
        return "timestamptz"
    return "text"


@functools.cache
def _copy_layout(table: sa.Table) -> tuple[list[str], list[str], list[int]]:
    """A table's column names, their binary COPY types, and the positions of its times."""
    kinds = [_binary_type(c) for c in table.columns]
    return [c.name for c in table.columns], kinds, [i for i, kind in enumerate(kinds) if kind == "timestamptz"]


def _json_as_text(dbapi_connection: Any, record: Any) -> None:
    """A new connection reads ``json`` values as their text, as stored (psycopg would parse them into objects,
    and rendering those again would not give the vendor's text back)."""
    from psycopg.types.string import TextLoader

    dbapi_connection.adapters.register_loader("json", TextLoader)


def _explain(reason: str, url: URL, bounds: PgBounds) -> str:
    """What to check, from libpq's or the server's message."""
    text = reason.lower()
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "no answer from the server" in text:
        return bounds.frozen(where)
    if "too many clients" in text or "connection slots are reserved" in text or "too many connections" in text:
        return ("the server has no free connection (max_connections, or the user's or database's connection "
                "limit, is reached): nothing more was written; close idle sessions (see pg_stat_activity) or raise "
                "the limit, then run the sync again")
    if "shutting down" in text or "administrator command" in text:
        return ("the server is shutting down (or an administrator ended the session): nothing after the last "
                "committed page was written; run the sync again once the server is back up")
    if "starting up" in text or "recovery mode" in text or "not yet accepting connections" in text:
        return "the server is starting up or recovering: nothing was written; run the sync again in a moment"
    if "statement timeout" in text:
        return (f"a statement ran longer than statement_timeout_seconds ({bounds.statement:g}) and the server "
                "cancelled it: the server is overloaded or a query is slow; raise statement_timeout_seconds in "
                "[destination] if that is expected, then run the sync again")
    if "lock timeout" in text:
        return (f"waited more than lock_timeout_seconds ({bounds.lock:g}) for a lock another session holds (a schema "
                "upgrade, a table locked by hand: see pg_locks); run the sync again when it is released, or raise "
                "lock_timeout_seconds in [destination]")
    if "password authentication failed" in text:
        return (f"wrong password for user '{url.username}': check the password (${{VAR}} in the url, "
                "PGPASSWORD or ~/.pgpass)")
    if "no password supplied" in text or "fe_sendauth" in text:
        return f"the server wants a password for user '{url.username}': set PGPASSWORD, ~/.pgpass or ${{VAR}}"
    if "does not exist" in text and "database" in text:
        return f"the database '{url.database}' does not exist: create it (createdb {url.database}) or fix the url"
    if "does not exist" in text and "role" in text:
        return f"the user '{url.username}' does not exist on the server: fix the user in the url"
    if "timeout expired" in text:
        return (f"no answer in connect_timeout_seconds ({bounds.connect:g}): check the host and port, and that the "
                "server is running (not stopped or frozen) and reachable")
    if "connection refused" in text or "could not connect" in text or "timeout" in text or "timed out" in text:
        return "nothing answers there: check the host and port, and that the server is running and reachable"
    if "could not translate host name" in text or "name or service not known" in text:
        return "unknown host name: check the host in the url"
    if "ssl" in text:
        return f"SSL failed ({redact(reason)}): check sslmode in the url"
    return redact(reason)


def _upsert_sql(table: sa.Table) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` of one row of ``table`` (parameters by column name)."""
    names = [c.name for c in table.columns]
    return (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(f'%({n})s' for n in names)}) "
            f"{on_conflict_update(table)}")


_SAVE_STATE = _upsert_sql(stream_state)


def existing_hashes_sql(table: str, key: str) -> str:
    """The stored ``row_hash`` of each key of a page (parameters: the keys as an array, the source).

    One primary-key probe per key, whatever the statistics say: "source = X AND id IN (...)" was planned as a scan
    of all the source's rows once the statement was prepared, and so was a plain lateral join, which the planner
    flattens into a hash join over the source's rows while the statistics still describe the table as nearly
    empty (a first load, before autovacuum's first ANALYZE): each page cost more than the one before. ``OFFSET 0``
    keeps the subquery as written, so it can only run as an index probe per key."""
    return (f"SELECT k.id, t.row_hash FROM unnest(%s::text[]) AS k(id) CROSS JOIN LATERAL "
            f"(SELECT row_hash FROM {table} WHERE source = %s AND {key} = k.id OFFSET 0) AS t")


def _cursor(conn: Connection) -> Any:
    """A psycopg cursor on the connection of ``conn`` (in its transaction)."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


class _InFlight:
    """A page being written (by :meth:`PostgresStore.start_in_sequence`): the keys it writes, the page started
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


class PostgresStore(Store):
    """Two pages in flight, in the writer process: page n+1's rows go to the server on a second connection (its
    own transaction) while page n's are still being stored, so that the writer's own work, its round trips and
    the server's work of two pages overlap. Pages still commit one after the other, in order, each with its
    state: page n+1 writes its state row only once page n has committed, and not at all (it rolls back) when
    page n of the same sync failed. Where page n+1 writes a key that page n writes too, it waits for page n to
    end before it looks that table's keys up: its "new", "changed" and "unchanged" must see page n's rows, and
    its inserts must not collide with them (adjacent pages often share a customer). Rejected records likewise."""

    scheme = "postgresql"
    pages_in_flight = 2

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
        return (f"the process writing to PostgreSQL at {self._where()} did not answer for "
                f"{self.bounds.answer_wait():g}s: the server is frozen or unreachable, or that process is stuck: "
                "check that the server runs and can be reached from here, then run the sync again; nothing after "
                "the last committed page was stored")

    def _where(self) -> str:
        return f"{self._url.host or 'localhost'}:{self._url.port or 5432}"

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
        self._flight = threading.local()  # .page: the page in flight this thread writes
        self._flight_guard = threading.Lock()
        self._flights: ThreadPoolExecutor | None = None
        self._last_flight: _InFlight | None = None
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
        self._pages = self._engine(options + " -c synchronous_commit=off")  # see _page_transaction
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.OperationalError as exc:
            engine.dispose()
            self._pages.dispose()
            raise self._connection_failed(exc) from None
        return engine

    def _engine(self, options: str) -> Engine:
        engine = sa.create_engine(self._url, connect_args={**self._connect_args, "options": options,
                                                           "application_name": "ordersync"})
        sa.event.listen(engine, "do_connect", self._bounded_connect)
        sa.event.listen(engine, "connect", _json_as_text)
        return engine

    def _bounded_connect(self, _dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        """Every connection of this store waits for the server at most ``bounds.exchange_wait`` per exchange."""
        connection = BoundedConnection.connect(*cargs, **cparams)
        connection.exchange_wait = self.bounds.exchange_wait
        return connection

    def _connection_failed(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot connect to PostgreSQL at {self._where()} (database {self._url.database}, user "
                          f"{self._url.username}): {self._reason(exc)}")

    def _open_error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, sa.exc.OperationalError):
            return self._connection_failed(exc)
        return StoreError(f"cannot prepare the tables in {self.describe()}: {redact(self._reason(exc))}")

    def _reason(self, exc: BaseException) -> str:
        """The server's or libpq's message, with what to check where it is known (see :func:`_explain`)."""
        return _explain(redact(super()._reason(exc)), self._url, self.bounds)

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

    # --- pages in flight -------------------------------------------------------------------------------------
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
        # psycopg directly: SQLAlchemy's ON CONFLICT statement cost the writer as much as a page's COPY of orders
        with contextlib.closing(_cursor(conn)) as cursor:
            cursor.execute(_SAVE_STATE, {"source": source, "stream": stream, "api": api, "state": dumps(state),
                                         "updated_at": at})

    def _write_rejects(self, conn: Connection, source: str, stream: str, items: Sequence[Reject]) -> None:
        self._wait_for_page_before()  # rejected records are kept by record: the page before may hold the same
        super()._write_rejects(conn, source, stream, items)

    def _clear_rejects(self, conn: Connection, source: str, stream: str, ids: Sequence[str]) -> None:
        if ids:  # after the page before: it may reject one of these ids (stored now, so no longer rejected)
            self._wait_for_page_before()
            super()._clear_rejects(conn, source, stream, ids)

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
        if self._flights is not None:
            self._flights.shutdown(wait=True)
        super().close()
        self._pages.dispose()

    # --- bulk writes ----------------------------------------------------------------------------------------
    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        self._wait_for_page_before(source, table, keys)
        cursor = _cursor(conn)
        with contextlib.closing(cursor):
            cursor.execute(existing_hashes_sql(table.name, key), (keys, source))
            return dict(cursor.fetchall())

    @staticmethod
    def _raw_value(raw: bytes) -> Any:
        return raw  # the bytes as they came: _copy sends them as they are

    @staticmethod
    def _complete(table: sa.Table, row: Row) -> Row:
        """As it is: :meth:`_copy` reads each column by name (a missing one is NULL) and truncates times."""
        return row

    @staticmethod
    def _copy(cursor: Any, target: str, table: sa.Table, rows: list[Row]) -> None:
        """Binary COPY: the server parses no text for numbers and times; ``raw`` goes as the JSON bytes the sync
        process holds (json's binary form is its text: the server checks it and keeps it as is). Times in whole
        seconds, as on every destination (the vendor's exact value stays in ``raw``)."""
        names, kinds, times = _copy_layout(table)
        with cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(kinds)
            for row in rows:
                values = list(map(row.get, names))  # a missing column is NULL
                for i in times:
                    if (value := values[i]) is not None and value.microsecond:
                        values[i] = value.replace(microsecond=0)
                copy.write_row(values)

    def shares_database(self) -> bool:
        return True

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        columns = [c.name for c in table.columns]
        stage = f"_ordersync_stage_{table.name}"
        cursor = _cursor(conn)
        with contextlib.closing(cursor):
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS")
            self._copy(cursor, stage, table, rows)
            names = ", ".join(columns)
            cursor.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
                           f"{on_conflict_update(table)}")

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        cursor = _cursor(conn)
        with contextlib.closing(cursor):
            self._copy(cursor, table.name, table, rows)
