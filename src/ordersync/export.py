"""One published table to CSV, JSON Lines or Parquet, streamed in batches so memory stays flat."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import sqlalchemy as sa

from ordersync.errors import OrdersyncError
from ordersync.store import PUBLISHED, Store

FORMATS = ("csv", "jsonl", "parquet")
BATCH = 5000


def _batches(store: Store, table: str, source: str | None) -> Iterator[list[dict[str, Any]]]:
    t = PUBLISHED[table]
    query = sa.select(t).order_by(*t.primary_key.columns)
    if source:
        query = query.where(t.c.source == source)
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(query)
        while batch := result.fetchmany(BATCH):
            yield [{str(k): v for k, v in row._mapping.items()} for row in batch]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _check_out(out: Path | None) -> None:
    if out is not None and not out.parent.is_dir():
        raise OrdersyncError(f"cannot write {out}: the folder {out.parent} does not exist")


def export(store: Store, table: str, fmt: str, out: Path | None, source: str | None = None) -> int:
    """Write ``table`` to ``out`` (standard output when None) and return the number of rows."""
    if table not in PUBLISHED:
        raise OrdersyncError(f"unknown table '{table}'; the published tables are: {', '.join(PUBLISHED)}")
    if fmt not in FORMATS:
        raise OrdersyncError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    _check_out(out)
    if fmt == "parquet":
        if out is None:
            raise OrdersyncError("parquet needs a file: pass --out PATH")
        return _parquet(store, table, out, source)
    columns = [c.name for c in PUBLISHED[table].columns]
    handle: Any = out.open("w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout)
    rows = 0
    with handle as stream:
        stream_out: TextIO = stream
        writer = csv.DictWriter(stream_out, fieldnames=columns) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for batch in _batches(store, table, source):
            for row in batch:
                if writer:
                    writer.writerow({k: _cell(v) for k, v in row.items()})
                else:
                    row["raw"] = orjson.Fragment(row["raw"])
                    stream_out.write(orjson.dumps({k: _cell(v) for k, v in row.items()}).decode() + "\n")
            rows += len(batch)
    return rows


def _arrow_schema(table: str) -> Any:
    import pyarrow as pa

    def arrow_type(column: sa.Column[Any]) -> Any:
        if isinstance(column.type, sa.Boolean):
            return pa.bool_()
        if isinstance(column.type, sa.Integer):
            return pa.int64()
        if isinstance(column.type, sa.DateTime):
            return pa.timestamp("s", tz="UTC")
        return pa.string()

    return pa.schema([(c.name, arrow_type(c)) for c in PUBLISHED[table].columns])


def _parquet(store: Store, table: str, out: Path, source: str | None) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OrdersyncError("parquet export needs pyarrow: pip install 'ordersync[parquet]'") from None
    schema = _arrow_schema(table)
    rows = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        for batch in _batches(store, table, source):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            rows += len(batch)
    return rows
