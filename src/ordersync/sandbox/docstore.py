"""A small document store on SQLite: each record kept as JSON, with indexed columns to filter and sort on.

The sandboxes keep their data here so that a filtered page out of 100,000 orders is an indexed query,
not a scan of Python objects, and so that a sandbox can keep its data in a file between runs.
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

# (id, document, indexed column values, tag values)
Item = tuple[Any, dict[str, Any], Mapping[str, Any], Mapping[str, Any]]


class DocStore:
    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Large pages keep a record and its pre-rendered view on one page (no overflow chain to follow); it takes
        # effect on a new file only, and must come before the journal mode.
        self.conn.execute("PRAGMA page_size=32768")
        self.conn.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.lock = threading.RLock()
        self._closed = False
        if path != ":memory:":
            _OPEN_FILES.add(self)
        self._columns: dict[str, tuple[str, ...]] = {}
        self._tags: dict[str, tuple[str, ...]] = {}

    def define(self, name: str, columns: Mapping[str, str], tags: Sequence[str] = ()) -> None:
        """Create collection ``name`` with typed, indexed ``columns`` and multi-valued ``tags``; a ``BLOB`` column
        is not indexed: it holds a pre-rendered form of the document (see :meth:`find_raw`)."""
        cols = ", ".join(f"{col} {sqltype}" for col, sqltype in columns.items())
        with self.lock:
            existing = [row[1] for row in self.conn.execute(f"PRAGMA table_info({name})")]
            if existing and existing != ["id", *columns, "doc"]:  # a file written by another version: start over
                self.conn.execute(f"DROP TABLE {name}")
                self.conn.execute(f"DROP TABLE IF EXISTS {name}_tags")
                self.conn.execute("DROP TABLE IF EXISTS _meta")
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name} (id PRIMARY KEY, {cols}{', ' if cols else ''}doc BLOB NOT NULL)"
            )
            for col, sqltype in columns.items():
                # (column, id): a filter on the column, sorted by id, is answered from the index alone
                self.conn.execute(f"DROP INDEX IF EXISTS {name}_{col}")  # the single-column form of older files
                if sqltype.upper() != "BLOB":
                    self.conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_{col}_id ON {name} ({col}, id)")
            if tags:
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {name}_tags (id, tag TEXT, value)")
                self.conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_tags_tv ON {name}_tags (tag, value)")
                self.conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_tags_id ON {name}_tags (id)")
        self._columns[name] = tuple(columns)
        self._tags[name] = tuple(tags)

    def put_many(self, name: str, items: Iterable[Item]) -> None:
        """Insert or replace ``(id, doc, columns, tags)`` items in one transaction."""
        cols = self._columns[name]
        placeholders = ", ".join("?" for _ in range(len(cols) + 2))
        sql = f"INSERT OR REPLACE INTO {name} (id, {''.join(c + ', ' for c in cols)}doc) VALUES ({placeholders})"
        has_tags = bool(self._tags[name])
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                rows: list[tuple[Any, ...]] = []
                tag_rows: list[tuple[Any, Any, Any]] = []
                ids: list[tuple[Any]] = []
                for doc_id, doc, columns, tags in items:
                    rows.append((doc_id, *(columns.get(c) for c in cols), orjson.dumps(doc)))
                    ids.append((doc_id,))
                    for tag, values in tags.items():
                        tag_rows.extend((doc_id, tag, v) for v in values)
                self.conn.executemany(sql, rows)
                if has_tags:
                    self.conn.executemany(f"DELETE FROM {name}_tags WHERE id = ?", ids)
                    self.conn.executemany(f"INSERT INTO {name}_tags (id, tag, value) VALUES (?, ?, ?)", tag_rows)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def put(self, name: str, doc_id: Any, doc: dict[str, Any], columns: Mapping[str, Any],
            tags: Mapping[str, Any] | None = None) -> None:
        self.put_many(name, [(doc_id, doc, columns, tags or {})])

    def get(self, name: str, doc_id: Any) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute(f"SELECT doc FROM {name} WHERE id = ?", (doc_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def find(
        self,
        name: str,
        where: Sequence[str] = (),
        params: Sequence[Any] = (),
        order_by: str = "id",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self.find_raw(name, "doc", where, params, order_by, limit, offset)]

    def find_raw(
        self,
        name: str,
        column: str,
        where: Sequence[str] = (),
        params: Sequence[Any] = (),
        order_by: str = "id",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[bytes]:
        """The stored bytes of ``column`` (the JSON document, or a pre-rendered form of it) of the matches.

        A page is chosen by id first (from the indexes alone), then its rows are read: SQLite would otherwise
        carry every match's document through the sort to keep the first ``limit``."""
        args = list(params)
        if limit is None:
            sql = f"SELECT {column} FROM {name}{where_sql(where)} ORDER BY {order_by}"
        else:
            sql = (f"SELECT {column} FROM {name} WHERE id IN (SELECT id FROM {name}{where_sql(where)} "
                   f"ORDER BY {order_by} LIMIT ? OFFSET ?) ORDER BY {order_by}")
            args += [limit, offset]
        with self.lock:
            return [row[0] for row in self.conn.execute(sql, args)]

    def count(self, name: str, where: Sequence[str] = (), params: Sequence[Any] = ()) -> int:
        with self.lock:
            return int(self.conn.execute(f"SELECT count(*) FROM {name}{where_sql(where)}", list(params)).fetchone()[0])

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.lock:
            row = self.conn.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    def tag_filter(self, name: str, tag: str, common: bool = False) -> str:
        """A WHERE fragment matching documents that carry ``tag`` with the value bound to its ``?``.

        ``common``: a value many documents carry (a course among a dozen). Then the documents are walked in the
        query's order and each is probed, so a page stops after its last match; otherwise (a reference, an
        e-mail) the few matching ids are looked up first."""
        if common:
            return f"EXISTS (SELECT 1 FROM {name}_tags t WHERE t.id = {name}.id AND t.tag = '{tag}' AND t.value = ?)"
        return f"id IN (SELECT id FROM {name}_tags WHERE tag = '{tag}' AND value = ?)"

    def clear(self) -> None:
        with self.lock:
            for name in self._columns:
                self.conn.execute(f"DELETE FROM {name}")
                if self._tags[name]:
                    self.conn.execute(f"DELETE FROM {name}_tags")

    def meta_get(self, key: str) -> str | None:
        with self.lock:
            self.conn.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self.conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
            self.conn.execute("INSERT OR REPLACE INTO _meta (key, value) VALUES (?, ?)", (key, value))

    def analyze(self) -> None:
        """Give SQLite's planner the statistics it needs to pick the right index for each filter."""
        with self.lock:
            self.conn.execute("ANALYZE")

    def export_bytes(self) -> bytes:
        """The whole store as one standalone SQLite file's bytes (``VACUUM INTO``: no log beside it)."""
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "snapshot.sqlite"
            with self.lock:
                self.conn.execute("VACUUM INTO ?", (str(target),))
            return target.read_bytes()

    def import_bytes(self, content: bytes, expect: str) -> dict[str, str]:
        """Replace the whole store with a snapshot's (its ``_meta`` generation must start with ``expect``); its
        ``_meta`` as a dict. A file that is not such a snapshot leaves the store as it was."""
        with tempfile.TemporaryDirectory() as folder:
            source_path = Path(folder) / "snapshot.sqlite"
            source_path.write_bytes(content)
            source = sqlite3.connect(source_path)
            try:
                meta = dict(source.execute("SELECT key, value FROM _meta").fetchall())
                if not str(meta.get("generation", "")).startswith(expect) or not meta.get("anchor"):
                    raise ValueError(f"not a snapshot of this sandbox ({expect.rstrip(':')}): "
                                     f"it holds {meta.get('generation') or 'no generation'}")
                with self.lock:
                    source.backup(self.conn)
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"not a sandbox snapshot: {exc}") from None
            finally:
                source.close()
        self.checkpoint()
        return {str(k): str(v) for k, v in meta.items()}

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the file and empty it: the file alone then holds every record (a copy of
        it is complete). Nothing to do in memory."""
        if self.path == ":memory:":
            return
        with self.lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Checkpoint, then close; the process's exit does it too (an ``atexit`` hook), for ``serve`` stopped by
        Ctrl-C or SIGTERM and for the demo's sandboxes."""
        with self.lock:
            if self._closed:
                return
            self.checkpoint()
            self.conn.close()
            self._closed = True


_OPEN_FILES: weakref.WeakSet[DocStore] = weakref.WeakSet()


@atexit.register
def _close_open_files() -> None:
    """At the process's exit, every data file still open is checkpointed: the file alone holds its data."""
    for store in list(_OPEN_FILES):
        with contextlib.suppress(sqlite3.Error):  # a file that went away: nothing left to save
            store.close()


def where_sql(clauses: Sequence[str]) -> str:
    return (" WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else ""
