"""One published table to CSV, JSON Lines or Parquet, streamed in batches so memory stays flat, from any destination.

CSV files start with a UTF-8 byte order mark, so that spreadsheets (Excel in particular) read å, ø, ü and é
correctly; times are ISO 8601 in UTC. Parquet keeps real types: int64 amounts, UTC timestamps, booleans, and
``raw`` as JSON text.
"""

from __future__ import annotations

import csv
import sys
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from ordersync.errors import OrdersyncError
from ordersync.store import PUBLISHED, Store, published_columns
from ordersync.store.tables import arrow_schema

FORMATS = ("csv", "jsonl", "parquet")
BATCH = 5000


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
    columns = [c.name for c in published_columns(PUBLISHED[table])]
    # a file gets a byte order mark (spreadsheets then read UTF-8); a pipe gets plain UTF-8
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    handle: Any = out.open("w", encoding=encoding, newline="") if out else nullcontext(sys.stdout)
    rows = 0
    with handle as stream:
        stream_out: TextIO = stream
        writer = csv.DictWriter(stream_out, fieldnames=columns) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for batch in store.iter_rows(table, source, BATCH):
            for row in batch:
                if writer:
                    writer.writerow({k: _cell(v) for k, v in row.items()})
                else:
                    row["raw"] = orjson.Fragment(row["raw"])
                    stream_out.write(orjson.dumps({k: _cell(v) for k, v in row.items()}).decode() + "\n")
            rows += len(batch)
    return rows


def _parquet(store: Store, table: str, out: Path, source: str | None) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OrdersyncError("parquet export needs pyarrow: pip install 'ordersync[parquet]'") from None
    schema = arrow_schema(published_columns(PUBLISHED[table]))
    rows = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        for batch in store.iter_rows(table, source, BATCH):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            rows += len(batch)
    return rows
