"""Exports from every destination, read back with the csv module and pyarrow and compared with the table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ordersync.store import Store, open_store
from tests.store.helpers import published
from tests.store.test_write import order

NAMES = ["Åse Øberg-Müller", "Zoë Brontë", "José Núñez", "Ærlig Ødegård"]


def fill(store: Store) -> None:
    for i, name in enumerate(NAMES):
        page = order(str(100 + i), total=10**12 + i)  # beyond 32 bits: int64 amounts
        page.orders[0].update(customer_name=name, created_at=datetime(2024, 3, 31, 23, 30, i, tzinfo=UTC))
        page.orders[0]["raw"]["name"] = name
        store.write_page("shop", "frontcore", "orders", page, {"cursor": i})


def export(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", "export", *args, "--db", url], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_csv_jsonl_and_parquet_hold_the_table(dest_url: str, tmp_path: Path) -> None:
    store = open_store(dest_url)
    fill(store)
    expected = published(store, "orders")
    store.close()  # the export is another process (DuckDB: one process per file)

    assert export(dest_url, "orders", "--format", "csv", "--out", str(tmp_path / "o.csv"), cwd=tmp_path).returncode == 0
    data = (tmp_path / "o.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the byte order mark that makes spreadsheets read UTF-8
    with (tmp_path / "o.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["customer_name"] for r in rows] == NAMES  # å ø ü é intact
    assert [int(r["total_minor"]) for r in rows] == [e["total_minor"] for e in expected]
    assert rows[2]["created_at"] == "2024-03-31T23:30:02Z" and json.loads(rows[0]["raw"]) == expected[0]["raw"]
    assert "row_hash" not in rows[0]  # bookkeeping stays out

    jsonl = export(dest_url, "orders", "--format", "jsonl", cwd=tmp_path)
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(r["customer_name"], r["raw"], r["is_paid"]) for r in lines] == [
        (e["customer_name"], e["raw"], e["is_paid"]) for e in expected]

    parquet = tmp_path / "o.parquet"
    assert export(dest_url, "orders", "--format", "parquet", "--out", str(parquet), cwd=tmp_path).returncode == 0
    table = pq.read_table(parquet)
    created = table.schema.field("created_at").type  # Parquet keeps seconds as milliseconds
    assert pa.types.is_timestamp(created) and created.tz == "UTC"
    assert table.schema.field("total_minor").type == pa.int64() and table.schema.field("is_paid").type == pa.bool_()
    got = table.to_pylist()
    for row, want in zip(got, expected, strict=True):
        row.pop("synced_at")
        row["raw"] = json.loads(row["raw"])
        assert row == want


def test_exporting_a_missing_file_is_refused_not_created(tmp_path: Path) -> None:
    for url in (str(tmp_path / "typo.db"), f"duckdb:///{tmp_path / 'typo.duckdb'}"):
        result = export(url, "orders", cwd=tmp_path)
        assert result.returncode == 1 and "no database at" in result.stderr and "typo" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("batch", [3])
def test_export_streams_in_batches(tmp_path: Path, batch: int) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    fill(store)
    sizes = [len(b) for b in store.iter_rows("orders", batch=batch)]
    assert sizes == [3, 1]
    store.close()
