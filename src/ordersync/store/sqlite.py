"""SQLite: the embedded default (``sqlite:///PATH``). WAL mode; one writer at a time; locks are files beside it."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordersync.store.base import Store
from ordersync.store.checkpoint import RESTART_AFTER, Checkpointer
from ordersync.store.files import FileLocks, check_file, database_path
from ordersync.store.pages import PageWrites
from ordersync.store.rows import Row, State, dumps, on_conflict_update
from ordersync.store.tables import RawJson, stream_state


def read_only_engine(path: Path, brief: bool = False) -> Engine:
    """An engine that cannot write ``path``: SQLite's ``mode=ro`` with ``query_only``, and plain ``BEGIN`` (never
    the write lock). With no log beside the file (no sync is writing it: a sync's log stays until its end) the
    file is opened ``immutable`` on read-only media, and by a ``brief`` reader (status, export, history): SQLite
    then creates no log and no shared-memory file beside it. The dashboard, which stays open while syncs write,
    reads through the log as usual."""
    from urllib.parse import quote

    idle = not Path(f"{path}-wal").exists()
    immutable = idle and (brief or not os.access(path.parent, os.W_OK))
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
    engine = sa.create_engine(f"sqlite:///{uri}&uri=true", connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA query_only = ON")

    return engine


# The log is copied back into the database every ~80 MB: 35% faster than every 4 MB (SQLite's default), and 6% less
# CPU than every 40 MB (e-guma, 100,000 orders: each random-keyed index page is copied once for more commits). A
# thread beside the writer does it (ordersync.store.checkpoint); once the log holds RESTART_AFTER times that, the
# writer copies the last commit or two itself so that the log starts over. SQLite's own checkpoint in the writer's
# commit only above the log's bound: a last resort should the thread be gone (below it, it would run in the
# writer's commits, or find the thread's checkpoint running and give up).
CHECKPOINT_FRAMES = 20000
PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",  # durable against a killed process; one fsync per checkpoint
    f"wal_autocheckpoint={2 * (RESTART_AFTER + 1) * CHECKPOINT_FRAMES}",
    # 16 MB of page cache, not SQLite's 2 MB: the primary-key and e-mail indexes of random keys (e-guma's UUIDs)
    # touch a different leaf per row, and with 2 MB each page of rows read most of them back from the OS. e-guma's
    # writer: 5-9% less CPU at 100,000 orders, for 14 MB more memory.
    "cache_size=-16384",
)


class SqliteStore(FileLocks, Store):
    scheme = "sqlite"
    _checkpointer: Checkpointer | None = None

    def _connect(self, create: bool) -> Engine:
        self.path = database_path(self.url)
        check_file(self.path, create)
        if self.read_only and self.path is not None:
            return read_only_engine(self.path, brief=True)
        if self.path is None:  # one shared connection, or every thread would see its own empty database
            engine = sa.create_engine("sqlite://", connect_args={"check_same_thread": False},
                                      poolclass=sa.pool.StaticPool)
        else:
            engine = sa.create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we say BEGIN ourselves, so that DDL is transactional too
            cursor = dbapi_connection.cursor()
            for pragma in PRAGMAS:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # IMMEDIATE: take the write lock up front, so that a second process waits for it (busy timeout)
            # instead of failing with "database is locked" when its read snapshot has to become a write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def shares_database(self) -> bool:
        return self.path is not None

    @contextlib.contextmanager
    def _page_transaction(self) -> Iterator[Connection]:
        """A page's transaction, and then a word to the checkpointer (started with the first page of a file),
        both under the write lock (pages of several sources may be written from several threads): when the
        checkpointer has the writer copy the rest of the log, no transaction of this process begins before that
        copy ends, and the log then starts over (see ordersync.store.checkpoint)."""
        with self._write_lock:  # reentrant: transaction() takes it too
            with self.transaction() as conn:
                yield conn
                if self.path is not None and self._checkpointer is None:
                    self._checkpointer = Checkpointer(self.path, PRAGMAS, CHECKPOINT_FRAMES)
            if self._checkpointer is not None:
                self._checkpointer.committed()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        super().close()

    @staticmethod
    def _complete(table: sa.Table, row: Row) -> Row:
        """As it is: :meth:`_insert` reads each column by name (a missing one is NULL) and writes times in whole
        seconds, and :meth:`_upsert` completes its rows itself; a copy per row here cost a third of a write."""
        return row

    @staticmethod
    def _raw_value(raw: bytes) -> Any:
        """The JSON bytes as they came: :meth:`_insert` binds them and SQLite casts them to TEXT, the same bytes
        (UTF-8 is the database's encoding), without decoding them here and encoding them again in the driver."""
        return raw

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        complete = [PageWrites._complete(table, row) for row in rows]
        for row in complete:  # through SQLAlchemy: bytes would be stored as a BLOB, so text here
            if type(raw := row.get("raw")) is bytes:
                row["raw"] = raw.decode()
        self._upsert_small(conn, table, complete)

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        """As :meth:`PageWrites._save_state`, in SQL written here (SQLAlchemy built and looked up an ``ON CONFLICT``
        statement for each page); the time as the column type's text."""
        conn.exec_driver_sql(_SAVE_STATE, (source, stream, api, dumps(state), _utc_text(at)))

    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        """As :meth:`PageWrites._existing_hashes`, in SQL written here: building and compiling SQLAlchemy's expanding
        ``IN`` cost more than SQLite's lookups (a third of a millisecond a page, twice a page)."""
        preparer = conn.dialect.identifier_preparer
        select = (f"SELECT {preparer.quote(key)}, row_hash FROM {preparer.format_table(table)} "
                  f"WHERE source = ? AND {preparer.quote(key)} IN ")
        found: dict[str, str | None] = {}
        for start in range(0, len(keys), 500):  # bounded: SQLite's limit on parameters
            chunk = keys[start:start + 500]
            found.update(conn.exec_driver_sql(select + f"({', '.join('?' * len(chunk))})", (source, *chunk)).all())
        return found

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        """A plain ``executemany`` of tuples, each value converted by its column type's own bind processor (so
        stored values are exactly what SQLAlchemy would store): a page's inserts without SQLAlchemy's per-row
        parameter handling, which cost more than SQLite's own work."""
        sql, build = _insert_plan(table, conn.dialect)
        conn.exec_driver_sql(sql, build(rows, {}))


def _utc_text(value: Any) -> str | None:
    """``tables.Timestamp``'s SQLite text (``YYYY-MM-DDTHH:MM:SSZ``), by ``isoformat`` rather than SQLAlchemy's
    ``%`` formatting of a dict per value: the same text, a third of the time."""
    return None if value is None else _iso_utc(value)


def _iso_utc(value: datetime) -> str:
    return value.isoformat(timespec="seconds")[:19] + "Z"


def _utc_text_kept(value: datetime, texts: dict[datetime, str]) -> str:
    """:func:`_utc_text`, remembered for the rest of an insert when the time is in UTC (a page's ``synced_at``
    is in every row, an order's ``updated_at`` is often its ``created_at``). Only UTC times are kept and looked
    up: a time equal to a kept one is then the same instant in the same zone, hence the same text."""
    text = _iso_utc(value)
    if value.tzinfo is UTC:
        texts[value] = text
    return text


RowsToTuples = Callable[[list[Row], dict[datetime, str]], list[tuple[Any, ...]]]


@functools.cache
def _insert_plan(table: sa.Table, dialect: sa.Dialect) -> tuple[str, RowsToTuples]:
    """The ``INSERT`` of every column of ``table`` and the function that turns rows into its parameter tuples.

    The function is generated for the table, one expression per column (a missing key is NULL), so that a row
    becomes its tuple in one step, without a list per row and a loop over its converted columns (40% of the
    Python work of an insert). ``raw`` is bound as the bytes it is and cast to TEXT by SQLite."""
    names = [c.name for c in table.columns]
    scope: dict[str, Any] = {"UTC": UTC, "kept": _utc_text_kept}
    values: list[str] = []
    placeholders: list[str] = []
    for index, column in enumerate(table.columns):
        get = f"g({column.name!r})"
        placeholders.append("?")
        if isinstance(column.type, RawJson):
            placeholders[-1] = "CAST(? AS TEXT)"  # text on SQLite: stored as it is
            values.append(get)
            continue
        processor = column.type._cached_bind_processor(dialect)
        if isinstance(column.type, sa.DateTime) and processor is not None and processor(_PROBE) == _utc_text(_PROBE):
            values.append(f"(None if (v := {get}) is None else texts[v] if v.tzinfo is UTC and v in texts "
                          "else kept(v, texts))")
        elif processor is not None:
            scope[f"convert{index}"] = processor
            values.append(f"convert{index}({get})")
        else:
            values.append(get)
    code = ("def build(rows, texts):\n"
            "    out = []\n"
            "    for row in rows:\n"
            "        g = row.get\n"
            f"        out.append(({', '.join(values)},))\n"
            "    return out\n")
    exec(compile(code, f"<insert into {table.name}>", "exec"), scope)  # noqa: S102 - our own table's columns
    preparer = dialect.identifier_preparer
    sql = (f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) "
           f"VALUES ({', '.join(placeholders)})")
    return sql, scope["build"]


_SAVE_STATE = (f"INSERT INTO {stream_state.name} (source, stream, api, state, updated_at) VALUES (?, ?, ?, ?, ?) "
               f"{on_conflict_update(stream_state)}")
_PROBE = datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=UTC)  # proves _utc_text writes what the column type would
