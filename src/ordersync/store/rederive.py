"""Columns derived again from the vendor records a database keeps: what a schema step needs when the normalizers
give a stored order something new (schema 5: ``lifecycle``, ``adjustment_minor``, Frontcore's VAT-inclusive
lines and its payment rows).

Every order keeps its vendor record in ``raw``, so its API's normalizer (``ordersync.apis.<api>.normalize``,
imported by name only here, so that the store depends on no API folder otherwise) can run on it again:

- the order's ``lifecycle`` and ``adjustment_minor`` are set from the normalized row;
- its lines and payments are replaced by the normalized ones when they came from this very record (each stored
  line's and payment's ``raw`` is the normalized one at the same position; the normalizer may now make more, as
  Frontcore's payment) and differ from them; rows that did not come from the record are left alone.

An order whose record the normalizer cannot read any more (or of an API this version does not know) keeps nulls
and its rows. The other columns and ``row_hash`` stay as they are: an order read again by a sync is then written
once as changed, as after any normalizer change. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordersync import jsontext
from ordersync.model import Record, Rows
from ordersync.store import tables

BATCH = 500
Normalize = Callable[[Record], Rows]
CHILDREN = (tables.order_lines, tables.payments)


def rederive_orders(conn: Connection) -> None:
    """Set the derived columns of every stored order, and its lines and payments, from its ``raw``."""
    staged = _staging_table()
    staged.create(conn)
    for batch in _stored_orders(conn):
        derived = {(source, order_id): rows for source, order_id, api, raw in batch
                   if (rows := _normalized(api, raw)) is not None and rows.orders}
        if not derived:
            continue
        conn.execute(staged.delete())
        conn.execute(staged.insert(), [{"source": source, "order_id": order_id,
                                        "lifecycle": rows.orders[0]["lifecycle"],
                                        "adjustment_minor": rows.orders[0]["adjustment_minor"]}
                                       for (source, order_id), rows in derived.items()])
        conn.execute(_update_from(staged))
        _replace_children(conn, derived)
    staged.drop(conn)


def _staging_table() -> sa.Table:
    """A batch's derived values, staged so that one statement updates the batch: DuckDB takes a second and a half
    for 500 single-row updates (an ``executemany``), a few milliseconds for one update from a table."""
    return sa.Table("_ordersync_rederived", sa.MetaData(),
                    sa.Column("source", sa.Text, primary_key=True), sa.Column("order_id", sa.Text, primary_key=True),
                    sa.Column("lifecycle", sa.Text), sa.Column("adjustment_minor", sa.BigInteger),
                    prefixes=["TEMPORARY"])


def _update_from(staged: sa.Table) -> sa.Update:
    """``orders`` set from ``staged`` by key, in correlated subqueries (SQLite before 3.33 has no UPDATE ... FROM)."""
    orders = tables.orders
    match = sa.and_(staged.c.source == orders.c.source, staged.c.order_id == orders.c.order_id)
    return (orders.update().where(sa.exists().where(match))
            .values(lifecycle=sa.select(staged.c.lifecycle).where(match).scalar_subquery(),
                    adjustment_minor=sa.select(staged.c.adjustment_minor).where(match).scalar_subquery()))


def _stored_orders(conn: Connection) -> Iterator[list[tuple[str, str, str, str]]]:
    """Every order's key, API and ``raw`` text, in batches by key (a bounded read whatever the table's size)."""
    orders = tables.orders
    after: tuple[str, str] | None = None
    while True:
        query = sa.select(orders.c.source, orders.c.order_id, orders.c.api, orders.c.raw)
        if after is not None:
            query = query.where(sa.tuple_(orders.c.source, orders.c.order_id) > sa.tuple_(*after))
        batch = [(r[0], r[1], r[2], r[3])
                 for r in conn.execute(query.order_by(orders.c.source, orders.c.order_id).limit(BATCH))]
        if not batch:
            return
        yield batch
        after = (batch[-1][0], batch[-1][1])


def _normalized(api: str, raw: str | None) -> Rows | None:
    """The rows today's normalizer makes of a stored record; None when it cannot (the order is left as it is)."""
    normalize = _normalizer(api)
    if normalize is None or raw is None:
        return None
    try:
        record, _ = jsontext.loads(raw.encode())
        return normalize(record) if isinstance(record, dict) else None
    except Exception:  # noqa: BLE001 - a record this version rejects keeps what an earlier one stored
        return None


@cache
def _normalizer(api: str) -> Normalize | None:
    """``order_rows`` of the API named ``api`` (its settings at their defaults), or None for an unknown API."""
    if not api.isidentifier():
        return None
    try:
        module = importlib.import_module(f"ordersync.apis.{api}.normalize")
    except ImportError:
        return None
    normalize = getattr(module, "order_rows", None)
    return normalize if callable(normalize) else None


def _replace_children(conn: Connection, derived: dict[tuple[str, str], Rows]) -> None:
    """Replace the lines and payments of the orders whose stored ones came from their record and differ."""
    stored = {table.name: _stored_children(conn, table, list(derived)) for table in CHILDREN}
    replaced: list[tuple[str, str]] = []
    fresh: dict[str, list[dict[str, Any]]] = {table.name: [] for table in CHILDREN}
    for (source, order_id), rows in derived.items():
        wanted = {table.name: [_stored_form(table, {**child, "source": source}) for child in getattr(rows, table.name)]
                  for table in CHILDREN}
        have = {name: stored[name].get((source, order_id), []) for name in wanted}
        if have == wanted or not all(_came_from(have[name], wanted[name]) for name in wanted):
            continue
        replaced.append((source, order_id))
        for name, children in wanted.items():
            fresh[name] += children
    for table in CHILDREN:
        for source in sorted({s for s, _ in replaced}):
            ids = [order_id for s, order_id in replaced if s == source]
            conn.execute(table.delete().where(table.c.source == source, table.c.order_id.in_(ids)))
        if fresh[table.name]:
            conn.execute(table.insert(), fresh[table.name])


def _stored_children(conn: Connection, table: sa.Table, keys: list[tuple[str, str]]) -> dict[Any, list[dict[str, Any]]]:
    """The stored rows of ``table`` of these orders, each order's in its numbering order."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    number = table.c.line_no if "line_no" in table.c else table.c.payment_no
    for source in sorted({s for s, _ in keys}):
        ids = [order_id for s, order_id in keys if s == source]
        query = (sa.select(table).where(table.c.source == source, table.c.order_id.in_(ids))
                 .order_by(table.c.order_id, number))
        for row in conn.execute(query):
            mapping = dict(row._mapping)
            found.setdefault((source, mapping["order_id"]), []).append(mapping)
    return found


def _stored_form(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """A normalized child row as the database would hold it: every column, ``raw`` as JSON text (None if it
    cannot be written so: a number beyond what orjson writes)."""
    try:
        raw: str | None = orjson.dumps(row["raw"]).decode()
    except TypeError:
        raw = None
    return {**{c.name: row.get(c.name) for c in table.columns}, "raw": raw}


def _came_from(stored: list[dict[str, Any]], normalized: list[dict[str, Any]]) -> bool:
    """Whether each stored row is the normalized one at its position (by its vendor record): the stored rows were
    made from this order's record, so they may be replaced by today's."""
    return len(stored) <= len(normalized) and all(n["raw"] is not None for n in normalized) \
        and all(_same_json(s["raw"], n["raw"]) for s, n in zip(stored, normalized, strict=False))


def _same_json(stored: str | None, normalized: str) -> bool:
    """The same JSON: the same text (as written by a sync), else the same value (PostgreSQL's records that were
    ``jsonb`` before schema 4 are jsonb's rendering of it)."""
    if stored == normalized or stored is None:
        return stored == normalized
    try:
        return bool(jsontext.loads(stored.encode())[0] == orjson.loads(normalized))
    except ValueError:
        return False
