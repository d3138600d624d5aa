"""The Store: what every destination does the same way (SQLAlchemy Core), and the few bulk paths each does its own.

Every page of a sync is written by :meth:`Store.write_page` in one transaction: the rows it brought, any records
rejected from it, and the stream state that covers them. A crash between two pages therefore leaves the database
consistent, and the next run resumes from the last state written. A row whose normalized content (hashed into
``row_hash``; for an order, with its lines and payments) is unchanged is not written again: that is what tells
"new", "changed" and "unchanged" apart, and why a normalizer fix reaches stored rows on the next full refresh.

``Store(url)`` returns the backend the URL names: ``sqlite:///``, ``postgresql://`` or ``duckdb:///``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypedDict

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync import history
from ordersync.errors import StoreError
from ordersync.store import migrations
from ordersync.store.locks import SourceLock
from ordersync.store.tables import (
    PUBLISHED,
    customers,
    order_lines,
    order_versions,
    orders,
    payments,
    published_columns,
    rejects,
    runs,
    stream_state,
)

if TYPE_CHECKING:
    from ordersync.store.writer import WriterProcess

Row = dict[str, Any]
State = dict[str, Any]
DEFAULT_LOCK_WAIT = 30.0


@dataclass
class WriteResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def add(self, other: WriteResult) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged


class Reject(TypedDict, total=False):
    """A record that could not be stored: kept in ``_ordersync_rejects`` instead of stopping the source."""

    record_id: str | None
    reason: str
    raw: Any


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def content_hash(value: Any) -> str:
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def row_hash(row: Row, children: Iterable[Row] = ()) -> str:
    """The hash that decides "unchanged": of a row (``raw`` already JSON bytes) and its children (an order's
    lines and payments). ``raw`` is hashed as the text it is, not escaped again inside another JSON
    document (that second encoding was most of the cost of a write); the other columns as JSON with sorted keys."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (row, *children):
        plain = dict(part)
        raw = plain.pop("raw")
        digest.update(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\x00")
        digest.update(raw)
        digest.update(b"\x01")
    return digest.hexdigest()


def _raw_text(rows: list[Row]) -> list[Row]:
    """The rows, each ``raw`` now JSON bytes: a record's text as the paging loop rendered it (see
    :func:`ordersync.rejects.normalize_page`), else rendered here. Bytes, not text: they are hashed as bytes and
    cross to a writer process with no encoding. In place: the rows are the page's own, built for this write."""
    for row in rows:
        if type(raw := row["raw"]) is not bytes:
            row["raw"] = orjson.dumps(raw)
    return rows


def on_conflict_update(table: sa.Table) -> str:
    """``ON CONFLICT (primary key) DO UPDATE SET`` every other column of ``table`` from the row offered: the
    upsert clause of the SQL written by hand for the hot paths (PostgreSQL and SQLite say it alike)."""
    keys = ", ".join(c.name for c in table.primary_key)
    update = ", ".join(f"{c.name} = excluded.{c.name}" for c in table.columns if not c.primary_key)
    return f"ON CONFLICT ({keys}) DO UPDATE SET {update}"


def last_wins(rows: Iterable[Row], key: Sequence[str]) -> list[Row]:
    """A page may hold the same record twice: keep the last copy, so that no key is written twice."""
    latest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        latest[tuple(row[k] for k in key)] = row
    return list(latest.values())


def _prepare(rows: Any, hashed: bool = False) -> PreparedPage:
    """One version of each key, ``raw`` as JSON bytes (hashed and stored as such: the vendor's record exactly as
    received); with ``hashed``, the rows' hashes too (else the writer computes them)."""
    page = PreparedPage(
        _raw_text(last_wins(rows.orders, ("order_id",))),
        _raw_text(last_wins(rows.order_lines, ("order_id", "line_no"))),
        _raw_text(last_wins(getattr(rows, "payments", []), ("order_id", "payment_no"))),
        _raw_text(last_wins(rows.customers, ("customer_id",))),
    )
    return page._replace(hashes=page_hashes(page)) if hashed else page


def page_hashes(page: PreparedPage) -> tuple[list[str], list[str]]:
    """The hash of each order (with its lines and payments) and of each customer of a page."""
    children: dict[str, dict[str, list[Row]]] = {}
    for name, items in (("lines", page.order_lines), ("payments", page.payments)):
        for child in items:
            children.setdefault(child["order_id"], {"lines": [], "payments": []})[name].append(child)
    empty: dict[str, list[Row]] = {"lines": [], "payments": []}
    order_hashes = []
    for o in page.orders:
        mine = children.get(o["order_id"], empty)
        order_hashes.append(row_hash(o, [*mine["lines"], *mine["payments"]]))
    return order_hashes, [row_hash(c) for c in page.customers]


class PreparedPage(NamedTuple):
    """A page's rows, one version of each key, with ``raw`` as JSON bytes: what a writer process receives."""

    orders: list[Row]
    order_lines: list[Row]
    payments: list[Row]
    customers: list[Row]
    hashes: tuple[list[str], list[str]] | None = None  # (orders, customers), when the sync process had the time


class Store:
    """One destination database. Thread-safe: the engine calls it from worker threads, one per source."""

    scheme: ClassVar[str] = ""
    url: str
    engine: Engine
    _writer: WriterProcess | None = None

    def __new__(cls, url: str, **_options: Any) -> Store:
        if cls is Store:
            from ordersync.store.urls import backend_for

            cls = backend_for(url)
        return super().__new__(cls)

    def __init__(self, url: str, *, schema: str | None = None, lock_wait: float = DEFAULT_LOCK_WAIT,
                 create: bool = True, history: bool = True, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only  # status, export, history: open read-only, create nothing, upgrade nothing
        self.history = history  # keep order_versions; off only to measure what it costs
        self.schema = schema
        self.lock_wait = lock_wait
        self._write_lock = threading.Lock()
        self._locks: dict[str, tuple[SourceLock, int]] = {}
        self._locks_guard = threading.Lock()
        self._own_runs: set[int] = set()
        self._failed_sequences: set[str] = set()  # in a writer process: page sequences that stopped on a failure
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

    # --- what each backend provides -------------------------------------------------------------------------
    def describe(self) -> str:
        """The destination for messages: never with a password."""
        return self.url

    def _connect(self, create: bool) -> Engine:
        raise NotImplementedError

    def _migration_lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def _migration_tx_lock(self, conn: Connection) -> None:
        """Called first in each migration transaction (PostgreSQL takes a transaction-level lock there)."""

    def _acquire(self, source: str) -> SourceLock:
        raise NotImplementedError

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """Insert or replace ``rows`` (complete rows, every column) by primary key: a bulk path per database."""
        raise NotImplementedError

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """Insert ``rows`` whose keys are known to be free."""
        self._upsert(conn, table, rows)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sa.exc.OperationalError,)

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the destination {self.describe()}: {self._reason(exc)}")

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments this store was opened with: what its writer process opens it with."""
        return {"schema": self.schema, "lock_wait": self.lock_wait, "history": self.history}

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

    # --- connections ----------------------------------------------------------------------------------------
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
            from ordersync.store.writer import WriterProcess

            self._writer = WriterProcess(self.url, self.options, self.describe(), self.answer_wait(), self.stalled())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        with self._locks_guard:
            for lock, _count in self._locks.values():
                lock.release()
            self._locks.clear()
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (serialized within this process: every database here takes one writer anyway)."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except self._errors() as exc:
            raise StoreError(f"cannot write to {self.describe()}: {self._reason(exc)}") from None

    def _page_transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """The transaction of one page: its rows, rejected records and state (PostgreSQL's commits without
        waiting for the disk; see :meth:`ordersync.store.postgres.PostgresStore._page_transaction`)."""
        return self.transaction()

    def _reason(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", exc)
        return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__

    # --- locks ----------------------------------------------------------------------------------------------
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

    # --- state ----------------------------------------------------------------------------------------------
    def load_state(self, source: str, stream: str) -> State | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                sa.select(stream_state.c.state).where(stream_state.c.source == source, stream_state.c.stream == stream)
            ).scalar()
        return orjson.loads(raw) if raw else None

    # --- rows -----------------------------------------------------------------------------------------------
    def write_page(self, source: str, api: str, stream: str, rows: Any, state: State, *,
                   rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        """Write one page's rows, its rejected records and the state that covers them, atomically; say what was
        new or changed. ``rows`` has lists ``orders``, ``order_lines``, ``customers`` and ``payments``.

        With a writer process (:meth:`start_writer`) the page is stored there; this returns once it is committed."""
        if self._writer is not None:
            result: dict[str, WriteResult] = self.submit_page(None, source, api, stream, rows, state,
                                                              rejects=rejects).result()
            return result
        return self.write_prepared(source, api, stream, _prepare(rows), state, rejects)

    @property
    def writes_elsewhere(self) -> bool:
        """Whether pages go to a writer process: then :meth:`submit_page` queues them without waiting."""
        return self._writer is not None

    def submit_page(self, sequence: str | None, source: str, api: str, stream: str, rows: Any, state: State, *,
                    rejects: Sequence[Reject] = (), hashed: bool = False) -> Future[dict[str, WriteResult]]:
        """Queue a page for the writer process (see :meth:`start_writer`); pages are written in the order they are
        queued, each in its own transaction. Once a page of ``sequence`` fails, the later pages of that sequence
        are refused, not written: their state would claim the failed page's records. ``hashed``: hash the rows
        here (the caller knows the writer is the slower of the two processes)."""
        assert self._writer is not None, "submit_page needs a writer process (start_writer)"
        return self._writer.submit("write_in_sequence", sequence, source, api, stream, _prepare(rows, hashed), state,
                                   list(rejects))

    def writer_cpu_seconds(self) -> float | None:
        """The writer process's CPU time so far (as of its last answer), or None without one."""
        return self._writer.cpu_seconds if self._writer is not None else None

    def hash_before_writing(self) -> bool:
        """Whether the sync process hashes a page's rows (see :meth:`submit_page`): when its writer process has
        worked more so far. The two share two cores and a sync lasts as long as the busier one. (A full queue is
        no sign: it was full for PostgreSQL while its commits waited for the disk.)"""
        return (self.writer_cpu_seconds() or 0.0) > time.process_time()

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

    def write_prepared(self, source: str, api: str, stream: str, page: PreparedPage, state: State,
                       rejects: Sequence[Reject] = ()) -> dict[str, WriteResult]:
        """:meth:`write_page`'s database part, in whichever process writes."""
        synced_at = now_utc()
        results = {"orders": WriteResult(), "customers": WriteResult()}
        page_orders, lines, pays, page_customers, hashes = page
        order_hashes, customer_hashes = hashes or page_hashes(page)
        with self._page_transaction() as conn:
            replaced: dict[str, str] = {}  # order id -> the raw a changed order replaces, for its history
            new, changed = self._upsert_changed(conn, orders, "order_id", source, page_orders, order_hashes,
                                                synced_at, results["orders"], replaced if self.history else None,
                                                api=api)
            if self.history:
                history.record(conn, order_versions, source, new + changed, replaced, synced_at, self._insert)
            if new or changed:  # an order's lines and payments are replaced with it (new orders have none yet)
                chosen = {o["order_id"] for o in new + changed}
                for table, items in ((order_lines, lines), (payments, pays)):
                    if changed:
                        ids = [o["order_id"] for o in changed]
                        conn.execute(table.delete().where(table.c.source == source, table.c.order_id.in_(ids)))
                    fresh = [self._complete(table, {**c, "source": source, "raw": self._raw_value(c["raw"])})
                             for c in items if c["order_id"] in chosen]
                    if fresh:
                        self._insert(conn, table, fresh)
            self._upsert_changed(conn, customers, "customer_id", source, page_customers, customer_hashes, synced_at,
                                 results["customers"])
            self._clear_rejects(conn, source, stream, [c["customer_id"] for c in page_customers]
                                if stream == "customers" else [o["order_id"] for o in page_orders])
            if rejects:
                self._write_rejects(conn, source, stream, rejects)
            self._save_state(conn, source, api, stream, state, synced_at)
        return results

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        self._upsert_small(conn, stream_state, [{"source": source, "stream": stream, "api": api,
                                                 "state": dumps(state), "updated_at": at}])

    @staticmethod
    def _raw_value(raw: bytes) -> Any:
        """A row's ``raw`` (JSON bytes) as this database's bulk writes take it: text (SQLite stores TEXT)."""
        return raw.decode()

    @staticmethod
    def _complete(table: sa.Table, row: Row) -> Row:
        """Every column of ``table`` (missing ones None, unknown keys dropped), in the table's order; times in
        whole seconds on every destination (the vendor's exact value stays in ``raw``)."""
        names, times = _layout(table)
        complete = {name: row.get(name) for name in names}
        for name in times:
            value = complete[name]
            if value is not None and value.microsecond:
                complete[name] = value.replace(microsecond=0)
        return complete

    def _upsert_changed(self, conn: Connection, table: sa.Table, key: str, source: str, rows: list[Row],
                        hashes: list[str], synced_at: datetime, result: WriteResult,
                        replaced: dict[str, str] | None = None, **extra: Any) -> tuple[list[Row], list[Row]]:
        """Write the rows whose hash differs from the stored one; return them as (new, changed). ``replaced``,
        when given, receives the stored ``raw`` of each changed row before it is overwritten."""
        if not rows:
            return [], []
        existing = self._existing_hashes(conn, table, key, source, [row[key] for row in rows])
        new: list[Row] = []
        changed: list[Row] = []
        for row, row_hash in zip(rows, hashes, strict=True):
            if existing.get(row[key], "") == row_hash:
                result.unchanged += 1
                continue
            complete = self._complete(table, {**row, **extra, "source": source, "synced_at": synced_at,
                                              "row_hash": row_hash, "raw": self._raw_value(row["raw"])})
            (changed if row[key] in existing else new).append(complete)
        result.new += len(new)
        result.changed += len(changed)
        if changed and replaced is not None:
            for chunk in range(0, len(changed), 500):
                keys = [row[key] for row in changed[chunk:chunk + 500]]
                replaced.update(conn.execute(
                    sa.select(table.c[key], table.c.raw).where(table.c.source == source, table.c[key].in_(keys))
                ).all())
        if new:  # keys known to be free (this source's lock keeps other writers out): a plain bulk insert
            self._insert(conn, table, new)
        if changed:
            self._upsert(conn, table, changed)
        return new, changed

    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        """The stored ``row_hash`` of each of ``keys`` that exists (None: stored before schema 2)."""
        return dict(conn.execute(
            sa.select(table.c[key], table.c.row_hash).where(table.c.source == source, table.c[key].in_(keys))
        ).all())

    def _upsert_small(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """A few rows by primary key through SQLAlchemy (``INSERT ... ON CONFLICT`` on all three databases)."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
        stmt = insert(table)
        update = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
        conn.execute(stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key], set_=update),
                     rows)

    def _write_rejects(self, conn: Connection, source: str, stream: str, items: Sequence[Reject]) -> None:
        seen_at = now_utc()
        found: dict[str, Row] = {}
        for item in items:
            record_id = item.get("record_id")
            raw = dumps(item.get("raw"))
            key = str(record_id) if record_id is not None else "hash:" + content_hash(item.get("raw"))
            found[key] = {"source": source, "stream": stream, "reject_key": key,
                          "record_id": None if record_id is None else str(record_id),
                          "reason": item.get("reason") or "rejected", "raw": raw, "seen_at": seen_at}
        self._upsert_small(conn, rejects, list(found.values()))

    def _clear_rejects(self, conn: Connection, source: str, stream: str, ids: Sequence[str]) -> None:
        """A record stored now is no longer rejected: the reject kept under its id (same source and stream) is
        deleted in the page's transaction, so the exit status returns to 0 once the vendor fixed the record.
        (A reject without an id is kept by a hash of the record: nothing can match it; it stays until deleted.)"""
        for chunk in range(0, len(ids), 500):
            conn.execute(rejects.delete().where(rejects.c.source == source, rejects.c.stream == stream,
                                                rejects.c.reject_key.in_(list(ids[chunk:chunk + 500]))))

    def outstanding_rejects(self, sources: Sequence[str]) -> int:
        """Records of ``sources`` kept in ``_ordersync_rejects``: not stored, so every sync says so (exit 3)."""
        if not sources:
            return 0
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(rejects)
                                        .where(rejects.c.source.in_(list(sources)))).scalar() or 0)
        except self._errors() as exc:
            raise StoreError(f"cannot read the rejected records in {self.describe()}: {self._reason(exc)}") from None

    # --- run log --------------------------------------------------------------------------------------------
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
        return run_id

    def finish_run(self, run_id: int, status: str, rows: WriteResult, requests: int, error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                finished_at=now_utc(), status=status, new_rows=rows.new, changed_rows=rows.changed,
                unchanged_rows=rows.unchanged, requests=requests, error=error,
            ))
            source = conn.execute(sa.select(runs.c.source).where(runs.c.run_id == run_id)).scalar()
        self._own_runs.discard(run_id)
        if source is not None:
            self.unlock(source)

    # --- reading --------------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Per source and stream: the last run, the stored state, how many rows the source has, rejected records."""
        with self.engine.connect() as conn:
            states = {(r.source, r.stream): r for r in conn.execute(sa.select(stream_state))}
            last = sa.select(runs.c.source, runs.c.stream, sa.func.max(runs.c.run_id).label("run_id")).group_by(
                runs.c.source, runs.c.stream).subquery()
            last_runs = {(r.source, r.stream): r for r in conn.execute(
                sa.select(runs).join(last, runs.c.run_id == last.c.run_id))}
            counts: dict[str, dict[str, int]] = {
                name: dict(conn.execute(sa.select(t.c.source, sa.func.count()).group_by(t.c.source)).all())
                for name, t in PUBLISHED.items()
            }
            rejected = {(r[0], r[1]): int(r[2]) for r in conn.execute(
                sa.select(rejects.c.source, rejects.c.stream, sa.func.count()).group_by(rejects.c.source,
                                                                                         rejects.c.stream))}
        result = []
        for source, stream in sorted(set(states) | set(last_runs) | set(rejected)):
            state, run = states.get((source, stream)), last_runs.get((source, stream))
            result.append({
                "source": source,
                "stream": stream,
                "last_run": run.started_at if run else None,
                "last_status": run.status if run else None,
                "last_error": run.error if run else None,
                "state": orjson.loads(state.state) if state else None,
                "rows": {name: c.get(source, 0) for name, c in counts.items()},
                "rejected": rejected.get((source, stream), 0),
            })
        return result

    def totals(self, sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Orders, lines, customers and the order total per source and currency, for the demo's summary."""
        query = sa.select(
            orders.c.source, orders.c.api, orders.c.currency, sa.func.count().label("orders"),
            sa.func.sum(orders.c.total_minor).label("total_minor"),
        ).group_by(orders.c.source, orders.c.api, orders.c.currency).order_by(orders.c.source, orders.c.currency)
        if sources:
            query = query.where(orders.c.source.in_(list(sources)))
        with self.engine.connect() as conn:
            return [{**r._mapping, "total_minor": None if r.total_minor is None else int(r.total_minor)}
                    for r in conn.execute(query)]

    def count(self, table: str, source: str | None = None) -> int:
        t = PUBLISHED[table]
        query = sa.select(sa.func.count()).select_from(t)
        if source:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def iter_rows(self, table: str, source: str | None = None, batch: int = 5000) -> Iterator[list[Row]]:
        """The published columns of ``table`` in key order, streamed in batches (``raw`` as JSON text, times UTC)."""
        t = PUBLISHED[table]
        columns = [sa.cast(c, sa.Text).label(c.name) if c.name == "raw" else c for c in published_columns(t)]
        query = sa.select(*columns).order_by(*t.primary_key.columns)
        if source:
            query = query.where(t.c.source == source)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            while chunk := result.fetchmany(batch):
                yield [{str(k): _utc(v) for k, v in row._mapping.items()} for row in chunk]


@functools.cache
def _layout(table: sa.Table) -> tuple[list[str], list[str]]:
    """A table's column names, and those that hold times."""
    return [c.name for c in table.columns], [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value
