"""One published table to CSV, JSON Lines, Parquet or an Excel workbook, streamed in batches so memory stays flat,
from any destination; for programs (the stored values as they are) or for people (amounts in major units, local
times, a date range). docs/exports.md says what each option and column means.

CSV files start with a UTF-8 byte order mark, so that spreadsheets (Excel in particular) read å, ø, ü and é
correctly. Times are ISO 8601: in UTC with ``Z``, or with ``--tz`` in that zone with their offset. Parquet keeps
real types: int64 amounts (decimal128 with ``--amounts decimal``), timestamps, booleans, and ``raw`` as JSON text.
Amounts in major units are exact decimals (never floats): the stored minor units moved by the currency's
exponent, the very exponent that turned the vendor's amount into minor units when it was stored
(:func:`ordersync.values.exponent`). A file is written beside its name and renamed when complete, so a failed
export never leaves a half-written file in its place.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa

from ordersync.errors import OrdersyncError
from ordersync.store import PUBLISHED, Store, orders, published_columns
from ordersync.timerange import TimeRange
from ordersync.values import exponent

FORMATS = ("csv", "jsonl", "parquet", "xlsx")
AMOUNTS = ("minor", "decimal")
CLOCKS = ("created", "updated")
BATCH = 5000
#: A decimal amount in Parquet: 19 digits of a bigint, and room for the largest exponent (3: BHD, KWD, ...).
DECIMAL_SCALE = 3


@dataclass(frozen=True)
class ExportOptions:
    """What an export holds and how it writes values. ``on``: the time the range applies to, ``created`` or
    ``updated`` (the last change: ``updated_at``, or ``created_at`` for a record never updated); lines and
    payments take their order's. ``zone``: times written in this zone with their offset (None: UTC, ``Z``)."""

    source: str | None = None
    amounts: str = "minor"
    period: TimeRange = field(default_factory=TimeRange)
    on: str = "created"
    zone: ZoneInfo | None = None

    def check(self) -> None:
        if self.amounts not in AMOUNTS:
            raise ValueError(f"--amounts '{self.amounts}' is not known; use minor or decimal")
        if self.on not in CLOCKS:
            raise ValueError(f"--on '{self.on}' is not known; use created or updated")


@dataclass(frozen=True)
class Column:
    """One column of the export: its stored name, the name it is written under, and what kind of value it holds
    (``money``, ``time``, ``raw`` or ``plain``)."""

    stored: str
    name: str
    kind: str
    column: sa.Column[Any]


def layout(table: str, options: ExportOptions) -> list[Column]:
    """The export's columns, in the table's order: every published column (a column added to the table is
    exported as it is). With decimal amounts, ``total_minor`` is written as ``total``."""
    out = []
    for c in published_columns(PUBLISHED[table]):
        name = str(c.name)  # SQLAlchemy's quoted_name, a str subclass, is no JSON key for orjson
        if name.endswith("_minor") and isinstance(c.type, sa.Integer):
            decimal = options.amounts == "decimal"
            out.append(Column(name, name.removesuffix("_minor") if decimal else name, "money", c))
        elif isinstance(c.type, sa.DateTime):
            out.append(Column(name, name, "time", c))
        else:
            out.append(Column(name, name, "raw" if name == "raw" else "plain", c))
    return out


def shaper(columns: list[Column], options: ExportOptions) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function from a stored row (times UTC) to the exported one: decimal amounts, times in the zone."""
    money = [c for c in columns if c.kind == "money"] if options.amounts == "decimal" else []
    times = [c for c in columns if c.kind == "time"] if options.zone else []
    zone = options.zone

    def shape(row: dict[str, Any]) -> dict[str, Any]:
        out = {c.name: row[c.stored] for c in columns}
        if money:
            places = -exponent(row.get("currency"))
            for c in money:
                if out[c.name] is not None:
                    out[c.name] = Decimal(out[c.name]).scaleb(places)
        for c in times:
            if out[c.name] is not None:
                out[c.name] = out[c.name].astimezone(zone)
        return out

    return shape


def export(store: Store, table: str, fmt: str, out: Path | None, source: str | None = None,
           options: ExportOptions | None = None) -> int:
    """Write ``table`` to ``out`` (standard output when None) and return the number of rows."""
    options = options or ExportOptions(source=source)
    if table not in PUBLISHED:
        raise OrdersyncError(f"unknown table '{table}'; the published tables are: {', '.join(PUBLISHED)}")
    if fmt not in FORMATS:
        raise OrdersyncError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    if out is not None and not out.parent.is_dir():
        raise OrdersyncError(f"cannot write {out}: the folder {out.parent} does not exist")
    columns = layout(table, options)
    batches = _shaped(store, table, columns, options)
    if fmt in ("parquet", "xlsx"):
        if out is None:
            raise OrdersyncError(f"{fmt} needs a file: pass --out PATH")
        write = _binary_writer(fmt)
        with replacing(out) as partial:
            return write(batches, columns, options, table, partial)
    zoned = options.zone is not None
    if out is None:
        return _text(batches, columns, fmt, sys.stdout, zoned)
    # a file gets a byte order mark (spreadsheets then read UTF-8); a pipe gets plain UTF-8
    with replacing(out) as partial, partial.open("w", encoding="utf-8-sig" if fmt == "csv" else "utf-8",
                                                 newline="") as stream:
        return _text(batches, columns, fmt, stream, zoned)


def _shaped(store: Store, table: str, columns: list[Column], options: ExportOptions) -> Iterator[list[dict[str, Any]]]:
    """The rows of the export in key order, in batches of at most :data:`BATCH`, already shaped."""
    shape = shaper(columns, options)
    for batch in rows(store, table, options):
        yield [shape(row) for row in batch]


def rows(store: Store, table: str, options: ExportOptions) -> Iterator[list[dict[str, Any]]]:
    """The stored published columns of ``table`` (``raw`` as JSON text, times UTC) that the options select, in key
    order, streamed in batches: the database's cursor is read :data:`BATCH` rows at a time."""
    t = PUBLISHED[table]
    query = sa.select(*(sa.cast(c, sa.Text).label(c.name) if c.name == "raw" else c for c in published_columns(t)))
    if options.source:
        query = query.where(t.c.source == options.source)
    if options.period.bounded:
        clocked = t if "created_at" in t.c else orders  # lines and payments: their order's time
        if clocked is not t:
            query = query.select_from(t.join(orders, sa.and_(orders.c.source == t.c.source,
                                                             orders.c.order_id == t.c.order_id)))
        moment = clocked.c.created_at if options.on == "created" else \
            sa.func.coalesce(clocked.c.updated_at, clocked.c.created_at, type_=clocked.c.created_at.type)
        if options.period.since is not None:
            query = query.where(moment >= options.period.since)
        if options.period.until is not None:
            query = query.where(moment < options.period.until)
    query = query.order_by(*t.primary_key.columns)
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        while chunk := result.fetchmany(BATCH):
            yield [{str(k): _utc(v) for k, v in row._mapping.items()} for row in chunk]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


@contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """A file beside ``out`` to write, renamed to ``out`` when the block ends well and removed when it fails."""
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _text(batches: Iterator[list[dict[str, Any]]], columns: list[Column], fmt: str, stream: TextIO,
          zoned: bool) -> int:
    """CSV (a header row, then one row per record) or JSON Lines (``raw`` as an object, decimals as exact JSON
    numbers). Times: ``2026-09-10T08:00:00Z`` in UTC, ``2026-09-10T10:00:00+02:00`` when ``zoned``."""
    writer = csv.DictWriter(stream, fieldnames=[c.name for c in columns]) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for batch in batches:
        for row in batch:
            if writer:
                writer.writerow({k: _cell(v, zoned) for k, v in row.items()})
            else:
                row["raw"] = orjson.Fragment(row["raw"])
                stream.write(orjson.dumps({k: _json(v, zoned) for k, v in row.items()}).decode() + "\n")
        count += len(batch)
    return count


def _cell(value: Any, zoned: bool) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() if zoned else value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _json(value: Any, zoned: bool) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # 12.50 as written, not a float's nearest value
    return _cell(value, zoned)


def _binary_writer(fmt: str) -> Callable[..., int]:
    """The writer of a format that needs an extra, or one line naming the extra to install."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet  # noqa: F401
            return _parquet
        from ordersync import xlsx
        return xlsx.write
    except ImportError:
        package = "pyarrow" if fmt == "parquet" else "openpyxl"
        raise OrdersyncError(f"{fmt} export needs {package}: pip install 'ordersync[{fmt}]'") from None


def _parquet(batches: Iterator[list[dict[str, Any]]], columns: list[Column], options: ExportOptions, _table: str,
             out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns, options)
    count = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def arrow_schema(columns: list[Column], options: ExportOptions) -> Any:
    """int64 amounts (decimal128 in major units with ``--amounts decimal``), timestamps in UTC or the zone,
    booleans, strings (``raw`` as JSON text)."""
    import pyarrow as pa

    from ordersync.store.tables import arrow_schema as stored

    def arrow_type(c: Column) -> Any:
        if c.kind == "money" and options.amounts == "decimal":
            return pa.decimal128(19 + DECIMAL_SCALE, DECIMAL_SCALE)
        if c.kind == "time" and options.zone is not None:
            return pa.timestamp("s", tz=options.zone.key)
        return stored([c.column]).field(0).type

    return pa.schema([(c.name, arrow_type(c)) for c in columns])
