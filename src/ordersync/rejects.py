"""A page's records normalized one by one: a record that cannot be stored is rejected, never the page.

A vendor's one bad record (an amount of ``1e30``, a total beyond 64 bits, no ``id``) must not stop its source
forever: every later run would stop on the same page. Each record is normalized and checked on its own; what
fails becomes a :class:`~ordersync.store.Reject` (kept in ``_ordersync_rejects`` in the page's transaction) and
the others are stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ordersync.jsontext import Unreadable
from ordersync.model import OrderLineRow, OrderRow, PaymentRow, Record, Rows
from ordersync.store import Reject
from ordersync.values import INT64_MAX, INT64_MIN

KEYS = (("orders", "order_id"), ("customers", "customer_id"))
INTEGERS = tuple((table, tuple(name for name, kind in hints.__annotations__.items() if "int" in str(kind)))
                 for table, hints in (("orders", OrderRow), ("order_lines", OrderLineRow), ("payments", PaymentRow)))
"""The integer columns of each published table (customers have none): where a value may not fit 64 bits."""


def normalize_page(normalize: Callable[[Record], Rows], records: list[Record],
                   rendered: list[bytes] | None = None) -> tuple[Rows, list[Reject]]:
    """The rows of ``records`` (one version of each key, the last read) and the records that were rejected.
    ``rendered``: each record's JSON text, if known, becomes the ``raw`` of the row holding that record."""
    parts: list[Rows] = []
    rejected: list[Reject] = []
    _normalize_span(normalize, records, rendered, range(len(records)), parts, rejected)
    return Rows.latest(parts), rejected


TURN_EVERY = 250  # records normalized between two turns of the event loop: about 10 ms, a tenth of a slow round
# trip (a turn every 25 records made Frontcore's sync 5% slower at 100,000 orders without latency)


async def normalize_page_turning(normalize: Callable[[Record], Rows], records: list[Record],
                                 rendered: list[bytes] | None = None) -> tuple[Rows, list[Reject]]:
    """:func:`normalize_page`, letting the event loop turn every ``TURN_EVERY`` records. Normalizing a page is the
    longest stretch of work in the sync process (tens of milliseconds); answers arriving meanwhile are read, and
    the requests that follow them sent, in its pauses rather than after it, so they do not wait on top of their
    round trip."""
    parts: list[Rows] = []
    rejected: list[Reject] = []
    for start in range(0, len(records), TURN_EVERY):
        _normalize_span(normalize, records, rendered, range(start, min(start + TURN_EVERY, len(records))), parts,
                        rejected)
        await asyncio.sleep(0)
    return Rows.latest(parts), rejected


def _normalize_span(normalize: Callable[[Record], Rows], records: list[Record], rendered: list[bytes] | None,
                    span: range, parts: list[Rows], rejected: list[Reject]) -> None:
    for index in span:
        record = records[index]
        if type(record) is Unreadable:  # an element no parser could make a record of (see ordersync.jsontext)
            rejected.append(Reject(record_id=record.record_id, reason=record.reason, raw=record.raw))
            continue
        try:
            rows = normalize(record)
        except Exception as exc:  # the vendor's data, not our bug: a KeyError, a malformed nested object, ...
            rejected.append(_reject(record, None, _reason(exc)))
            continue
        problem = check(rows)
        if problem is None:
            if rendered is not None:
                for row in (*rows.orders, *rows.customers):
                    if row["raw"] is record:
                        row["raw"] = rendered[index]
            parts.append(rows)
        else:
            rejected.append(_reject(record, _key(rows), problem))


def check(rows: Rows) -> str | None:
    """Why these rows cannot be stored, or None: a key that is not a non-empty text, or an integer outside
    signed 64 bits (no destination holds it, and wrapping or rounding it would store a wrong amount)."""
    for table, key in KEYS:
        for row in getattr(rows, table):
            value = row.get(key)
            if not isinstance(value, str) or not value:
                return f"{table}.{key} is {value!r}: the record has no usable id"
    for table, columns in INTEGERS:
        for row in getattr(rows, table):
            for column in columns:
                value = row.get(column)
                if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
                    return f"{table}.{column} = {value} is outside the signed 64-bit range"
    return None


def _key(rows: Rows) -> str | None:
    for table, key in KEYS:
        for row in getattr(rows, table):
            value = row.get(key)
            return value if isinstance(value, str) and value else None
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the record has no {exc.args[0]!r}" if exc.args else "a required field is missing"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text and not isinstance(exc, ValueError) else text or type(exc).__name__


def _reject(record: Any, record_id: str | None, reason: str) -> Reject:
    if record_id is None and isinstance(record, dict):
        value = record.get("id")
        record_id = str(value) if isinstance(value, str | int) and not isinstance(value, bool) and value != "" \
            else None
    return Reject(record_id=record_id, reason=reason, raw=record)
