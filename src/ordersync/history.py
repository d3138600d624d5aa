"""Order history: every distinct stored state of an order, as a slowly changing dimension of type 2.

The store calls :func:`record` inside the transaction of each page with the orders whose stored record changed
(new or different ``raw``). For each of them the open version (``valid_to`` null) is closed at the page's
``synced_at`` and a new version is appended that opens at the same moment. A version is written twice at most:
when it opens, and when it closes.

The open version's ``raw`` is null: it is the order's ``raw`` in ``orders``, and is copied into the version when
the version closes (the store hands over the record it replaces). Writing every record twice would double the
bytes a sync writes; this way history costs one small row per changed order and the records that were replaced.

Lines and payments are not copied into versions: they are derived from the vendor's order record, which every
version keeps in ``raw``, so any earlier state of them can be recomputed with the API's ``normalize``.

Portable SQLAlchemy Core only (SQLite, PostgreSQL, DuckDB); the table is defined on the store's ``metadata`` by
the store and passed in, so this module imports nothing from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: The order columns a version keeps, besides its key and validity.
VERSIONED = ("status", "is_paid", "total_minor", "currency", "updated_at", "raw")


def define(metadata: sa.MetaData, timestamp: sa.types.TypeEngine[Any], money: type[sa.BigInteger],
           raw: Any = sa.Text) -> sa.Table:
    """The ``order_versions`` table, on the store's metadata and with its column types."""
    return sa.Table(
        "order_versions", metadata,
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("version_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("valid_from", timestamp, nullable=False),
        sa.Column("valid_to", timestamp),
        sa.Column("status", sa.Text),
        sa.Column("is_paid", sa.Boolean),
        sa.Column("total_minor", money),
        sa.Column("currency", sa.Text),
        sa.Column("updated_at", timestamp),
        sa.Column("raw", raw),  # null while current: then it is orders.raw
    )


def record(conn: Connection, versions: sa.Table, source: str, changed: Sequence[dict[str, Any]],
           previous_raw: dict[str, str], at: datetime,
           insert: Callable[[Connection, sa.Table, list[dict[str, Any]]], None] | None = None) -> None:
    """Close the open version of each changed order at ``at`` (keeping ``previous_raw``, the record the page
    replaced) and append its new version, in the caller's transaction. New orders (not in ``previous_raw``)
    only get their first version."""
    if not changed:
        return
    last: dict[str, int] = {}
    for chunk in _chunks(list(previous_raw), 500):  # bounded IN lists: every database takes them
        last.update(conn.execute(
            sa.select(versions.c.order_id, sa.func.max(versions.c.version_no))
            .where(versions.c.source == source, versions.c.order_id.in_(chunk))
            .group_by(versions.c.order_id)
        ).all())
    if last:
        close = (versions.update()
                 .where(versions.c.source == source, versions.c.order_id == sa.bindparam("key"),
                        versions.c.valid_to.is_(None))
                 .values(valid_to=at, raw=sa.func.coalesce(versions.c.raw,
                                                        sa.bindparam("replaced", type_=versions.c.raw.type))))
        conn.execute(close, [{"key": key, "replaced": previous_raw[key]} for key in last])
    opened = [
        {"source": source, "order_id": row["order_id"], "version_no": last.get(row["order_id"], 0) + 1,
         "valid_from": at, "valid_to": None, **{name: row.get(name) for name in VERSIONED}, "raw": None}
        for row in changed
    ]
    if insert is None:
        conn.execute(versions.insert(), opened)
    else:  # the destination's bulk path (rows complete, keys free: each version number is new)
        insert(conn, versions, opened)


def backfill(conn: Connection, versions: sa.Table, orders: sa.Table) -> None:
    """Open a first version for every stored order (a database written before history existed)."""
    kept = [name for name in VERSIONED if name != "raw"]  # an open version's raw is the order's
    columns = ["source", "order_id", "version_no", "valid_from", *kept]
    select = sa.select(orders.c.source, orders.c.order_id, sa.literal(1, sa.Integer), orders.c.synced_at,
                       *(orders.c[name] for name in kept))
    conn.execute(versions.insert().from_select(columns, select))


def versions_of(conn: Connection, versions: sa.Table, orders: sa.Table, source: str,
                order_id: str) -> list[dict[str, Any]]:
    """An order's versions, oldest first, each with its ``raw`` and ``changes``: field -> (old, new) against the
    one before."""
    current = orders.c.raw.label("current_raw")
    rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(
        sa.select(versions, current)
        .join(orders, sa.and_(orders.c.source == versions.c.source, orders.c.order_id == versions.c.order_id))
        .where(versions.c.source == source, versions.c.order_id == order_id)
        .order_by(versions.c.version_no)
    )]
    for row in rows:
        current_raw = row.pop("current_raw")
        row["raw"] = row["raw"] if row["raw"] is not None else current_raw
    previous: dict[str, Any] | None = None
    for row in rows:
        row["changes"] = changes(previous, row) if previous else {}
        previous = row
    return rows


class _Absent:
    """The side of a change where the key is not in the record at all (told apart from a JSON null)."""

    def __repr__(self) -> str:
        return "(absent)"

    __str__ = __repr__


ABSENT: Any = _Absent()
"""The value of a change's side where the key does not exist: a key added has ``(ABSENT, new)``."""


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs between two versions: the versioned columns, then the vendor record as ``raw.PATH``
    (see :func:`diff_json`)."""
    diff: dict[str, tuple[Any, Any]] = {
        name: (old[name], new[name]) for name in VERSIONED if name != "raw" and old[name] != new[name]
    }
    if old["raw"] != new["raw"]:
        diff.update(diff_json(orjson.loads(old["raw"]), orjson.loads(new["raw"]), "raw"))
    return diff


def diff_json(before: Any, after: Any, path: str) -> dict[str, tuple[Any, Any]]:
    """Every difference between two JSON values as ``path -> (old, new)``, keys in path order.

    Objects are compared key by key (``raw.customer.email``), a key that is not on one side has :data:`ABSENT`
    there; lists of the same length item by item (``raw.lines[0].qty``); a list whose length changed is one
    change holding both lists whole, because its items cannot be paired by position (a note added at the front
    would otherwise read as every note changed). ``1``, ``1.0`` and ``true`` are different values, as in JSON.
    """
    if _same(before, after):
        return {}
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(before.keys() | after.keys()):
            out.update(diff_json(before.get(key, ABSENT), after.get(key, ABSENT), f"{path}.{key}"))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = {}
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            out.update(diff_json(old, new, f"{path}[{index}]"))
        return out
    return {path: (before, after)}


def _same(before: Any, after: Any) -> bool:
    """Equal as JSON values: Python's ``True == 1 == 1.0`` does not hold for what a vendor sent."""
    if type(before) is not type(after):
        return False
    if isinstance(before, dict):
        return before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before)
    if isinstance(before, list):
        return len(before) == len(after) and all(_same(a, b) for a, b in zip(before, after, strict=True))
    return bool(before == after)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def render_changes(diff: dict[str, tuple[Any, Any]], separator: str = "; ") -> str:
    """``status: paid -> cancelled; raw.order_notes: [] -> [{"text":"Called"}]``: text as it is, other values as
    compact JSON (``null``, ``true``, lists, objects), ``(absent)`` for a key that is not there."""
    return separator.join(f"{name}: {_shown(old)} -> {_shown(new)}" for name, (old, new) in diff.items()) or "(none)"


def _shown(value: Any) -> str:
    if isinstance(value, str | _Absent):
        return str(value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}Z"
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def versions_jsonl(versions: Sequence[dict[str, Any]]) -> str:
    """One JSON object per version (times ISO 8601 UTC, ``raw`` as an object, ``changes`` as field -> [old, new]).
    JSON has no "absent": a side that is absent is null there, and ``added`` / ``removed`` list the fields that
    were not in the version before / are not in this one."""
    lines = []
    for v in versions:
        pairs = v["changes"].items()
        item = {**v, "raw": orjson.loads(v["raw"]),
                "changes": {k: [None if side is ABSENT else side for side in pair] for k, pair in pairs},
                "added": [k for k, (old, _) in pairs if old is ABSENT],
                "removed": [k for k, (_, new) in pairs if new is ABSENT]}
        lines.append(orjson.dumps(item, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC).decode())
    return "".join(line + "\n" for line in lines)
