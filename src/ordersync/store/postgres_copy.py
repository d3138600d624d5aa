"""PostgreSQL's bulk page writes, through psycopg directly: binary COPY, a staging table merged by one upsert, and
one index probe per key.

A page's changed rows are copied into a temporary staging table and merged with one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE``; new rows and child rows (lines, payments) are copied straight into
their table (an order's old children are deleted first, see :mod:`ordersync.store.pages`).
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync.store.base import Store
from ordersync.store.rows import Row, State, dumps, on_conflict_update
from ordersync.store.tables import RawJson, stream_state


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


def cursor_of(conn: Connection) -> Any:
    """A psycopg cursor on the connection of ``conn`` (in its transaction)."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def copy_rows(cursor: Any, target: str, table: sa.Table, rows: list[Row]) -> None:
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


class PgBulkWrites(Store):
    """The page-writing steps of :class:`~ordersync.store.pages.PageWrites`, in PostgreSQL's bulk forms."""

    def _save_state(self, conn: Connection, source: str, api: str, stream: str, state: State, at: datetime) -> None:
        # psycopg directly: SQLAlchemy's ON CONFLICT statement cost the writer as much as a page's COPY of orders
        with contextlib.closing(cursor_of(conn)) as cursor:
            cursor.execute(_SAVE_STATE, {"source": source, "stream": stream, "api": api, "state": dumps(state),
                                         "updated_at": at})

    def _existing_hashes(self, conn: Connection, table: sa.Table, key: str, source: str,
                         keys: list[str]) -> dict[str, str | None]:
        with contextlib.closing(cursor_of(conn)) as cursor:
            cursor.execute(existing_hashes_sql(table.name, key), (keys, source))
            return dict(cursor.fetchall())

    @staticmethod
    def _raw_value(raw: bytes) -> Any:
        return raw  # the bytes as they came: copy_rows sends them as they are

    @staticmethod
    def _complete(table: sa.Table, row: Row) -> Row:
        """As it is: :func:`copy_rows` reads each column by name (a missing one is NULL) and truncates times."""
        return row

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        columns = [c.name for c in table.columns]
        stage = f"_ordersync_stage_{table.name}"
        with contextlib.closing(cursor_of(conn)) as cursor:
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS")
            copy_rows(cursor, stage, table, rows)
            names = ", ".join(columns)
            cursor.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
                           f"{on_conflict_update(table)}")

    def _insert(self, conn: Connection, table: sa.Table, rows: list[Row]) -> None:
        with contextlib.closing(cursor_of(conn)) as cursor:
            copy_rows(cursor, table.name, table, rows)
