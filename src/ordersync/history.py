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


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs between two versions: the versioned columns, then the vendor record's leaves as ``raw.PATH``."""
    diff: dict[str, tuple[Any, Any]] = {
        name: (old[name], new[name]) for name in VERSIONED if name != "raw" and old[name] != new[name]
    }
    if old["raw"] != new["raw"]:
        before, after = _leaves(orjson.loads(old["raw"])), _leaves(orjson.loads(new["raw"]))
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                diff[f"raw.{path}"] = (before.get(path), after.get(path))
    return diff


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c[0]": 2}``."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def render_changes(diff: dict[str, tuple[Any, Any]], separator: str = "; ") -> str:
    """``status: paid -> cancelled; total_minor: 100 -> 0`` (``-`` for a missing value)."""
    def show(value: Any) -> str:
        return "-" if value is None else str(value)

    return separator.join(f"{name}: {show(old)} -> {show(new)}" for name, (old, new) in diff.items()) or "(none)"


def versions_jsonl(versions: Sequence[dict[str, Any]]) -> str:
    """One JSON object per version (times ISO 8601 UTC, ``raw`` as an object, ``changes`` as field -> [old, new])."""
    lines = []
    for v in versions:
        item = {**v, "raw": orjson.loads(v["raw"]), "changes": {k: list(pair) for k, pair in v["changes"].items()}}
        lines.append(orjson.dumps(item, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC).decode())
    return "".join(line + "\n" for line in lines)
