"""Issue 27 part 4: exports for people. Exact decimal amounts in major units (by each row's currency), a date range
on creation or update time, local times with their offset, an Excel workbook; streamed in batches, read-only, on
SQLite, PostgreSQL and DuckDB; a wrong date or zone is one line."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ordersync
from ordersync import export as exporting
from ordersync.cli import app
from ordersync.export import ExportOptions, export
from ordersync.model import Rows
from ordersync.store import Store, open_store
from ordersync.timerange import time_range, zone

OSLO = zone("Europe/Oslo")


def order(order_id: str, currency: str | None, total: int, created: datetime, updated: datetime | None = None,
          name: str = "Kari Nordmann") -> dict[str, Any]:
    return {"order_id": order_id, "order_number": f"N-{order_id}", "status": "paid", "currency": currency,
            "total_minor": total, "discount_minor": None, "tax_minor": 0, "is_paid": True, "customer_id": "c1",
            "customer_name": name, "customer_email": "kari@example.org", "created_at": created,
            "updated_at": updated, "raw": {"id": order_id, "note": "ø"}}


def line(order_id: str, currency: str | None, total: int) -> dict[str, Any]:
    return {"order_id": order_id, "line_no": 1, "line_id": f"l-{order_id}", "product_id": "p", "name": "Course",
            "quantity": 1, "unit_price_minor": total, "total_minor": total, "currency": currency, "raw": {}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Around the turn of September in Oslo (UTC+02:00): "sep" is 23:30 on 30 September there, "oct" 00:30 on 1 October.
ORDERS = [
    order("sep", "NOK", 125050, at("2026-09-30T21:30:00Z"), updated=at("2026-10-02T09:00:00Z")),
    order("oct", "JPY", 1200, at("2026-09-30T22:30:00Z")),
    order("kwd", "KWD", -12345, at("2026-10-15T12:00:00Z")),
    order("none", None, 99, at("2026-10-31T22:59:59Z")),  # 23:59:59 on 31 October in Oslo (UTC+01:00 by then)
    order("nov", "EUR", 500, at("2026-10-31T23:00:00Z")),  # midnight, 1 November in Oslo: not in October
]


@pytest.fixture(params=["sqlite", "postgresql", "duckdb"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A destination of each kind holding :data:`ORDERS` with a line each, opened read-only as ``export`` does."""
    kind = request.param
    url = (str(request.getfixturevalue("pg_url")) if kind == "postgresql"
           else f"{kind}:///{tmp_path / ('orders.db' if kind == 'sqlite' else 'orders.duckdb')}")
    writer = open_store(url)
    try:
        writer.write_page("shop", "prio", "orders", Rows(
            orders=ORDERS, order_lines=[line(o["order_id"], o["currency"], o["total_minor"]) for o in ORDERS]),  # type: ignore[arg-type]
            {"c": 1})
    finally:
        writer.close()
    reader = open_store(url, read_only=True)
    yield reader
    reader.close()


def sqlite_with(tmp_path: Path, rows: list[dict[str, Any]]) -> str:
    """A SQLite destination holding these orders; its URL."""
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    writer = open_store(url)
    try:
        writer.write_page("shop", "prio", "orders", Rows(orders=rows), {"c": 1})  # type: ignore[arg-type]
    finally:
        writer.close()
    return url


def exported(store: Store, table: str, fmt: str, tmp_path: Path, **options: Any) -> list[dict[str, Any]]:
    out = tmp_path / f"{table}.{fmt}"
    count = export(store, table, fmt, out, options=ExportOptions(**options))
    text = out.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else \
        [json.loads(x, parse_float=Decimal) for x in text.splitlines()]
    assert count == len(rows)
    return rows


def test_october_in_oslo_with_decimal_amounts_on_every_destination(stored: Store, tmp_path: Path) -> None:
    october = ExportOptions(amounts="decimal", period=time_range("2026-10-01", "2026-11-01", OSLO), zone=OSLO)
    rows = exported(stored, "orders", "csv", tmp_path, **vars(october))
    assert [(r["order_id"], r["currency"], r["total"]) for r in rows] == [
        ("kwd", "KWD", "-12.345"), ("none", "", "0.99"), ("oct", "JPY", "1200")]  # key order; exponents 3, 2, 0
    assert "total_minor" not in rows[0] and rows[0]["discount"] == ""  # a null amount stays empty
    assert rows[2]["created_at"] == "2026-10-01T00:30:00+02:00" and rows[1]["created_at"] == "2026-10-31T23:59:59+01:00"
    lines = exported(stored, "order_lines", "jsonl", tmp_path, **vars(october))
    assert [(r["order_id"], r["total"], r["unit_price"]) for r in lines] == [
        ("kwd", Decimal("-12.345"), Decimal("-12.345")), ("none", Decimal("0.99"), Decimal("0.99")),
        ("oct", 1200, 1200)]  # lines take their order's creation time; JSON numbers written exactly


def test_the_range_on_update_time_and_in_utc_on_every_destination(stored: Store, tmp_path: Path) -> None:
    updated = exported(stored, "orders", "jsonl", tmp_path, on="updated",
                       period=time_range("2026-10-02T09:00:00Z", "2026-10-31T23:00:00"))
    # "sep" was created in September but updated on 2 October (the bound itself is included); "nov" at the end
    # is not (--until is excluded); never-updated orders count by their creation
    assert [(r["order_id"], r["total_minor"]) for r in updated] == [("kwd", -12345), ("none", 99), ("sep", 125050)]
    assert updated[2]["updated_at"] == "2026-10-02T09:00:00Z" and isinstance(updated[2]["raw"], dict)
    everything = exported(stored, "orders", "csv", tmp_path, source="shop")
    assert len(everything) == len(ORDERS) and everything[0]["created_at"].endswith("Z")  # as before: minor, UTC


def test_xlsx_has_numbers_datetimes_a_frozen_header_and_text_that_stays_text(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    hostile = "=HYPERLINK(\"http://example.org\",\"x\")\x01"
    url = sqlite_with(tmp_path, [*ORDERS, order("evil", "NOK", 1, at("2026-10-05T10:00:00Z"), name=hostile)])
    out = tmp_path / "orders.xlsx"
    store = open_store(url, read_only=True)
    count = export(store, "orders", "xlsx", out, options=ExportOptions(amounts="decimal", zone=OSLO))
    store.close()
    sheet = openpyxl.load_workbook(out)["orders"]
    header = [c.value for c in sheet[1]]
    assert count == len(ORDERS) + 1 and sheet.max_row == count + 1 and sheet.freeze_panes == "A2"
    assert "raw" not in header and "total" in header and "created_at (Europe/Oslo)" in header
    assert all(c.font.b for c in sheet[1])
    rows = {r[header.index("order_id")].value: {h: c for h, c in zip(header, r, strict=True)}
            for r in sheet.iter_rows(min_row=2)}
    kwd, oct_ = rows["kwd"], rows["oct"]
    assert kwd["total"].data_type == "n" and kwd["total"].value == pytest.approx(-12.345)
    assert kwd["total"].number_format == "#,##0.000" and oct_["total"].number_format == "#,##0"
    assert rows["sep"]["total"].value == pytest.approx(1250.50) and rows["sep"]["total"].number_format == "#,##0.00"
    assert oct_["created_at (Europe/Oslo)"].is_date
    assert oct_["created_at (Europe/Oslo)"].value == datetime(2026, 10, 1, 0, 30)  # Oslo's wall clock
    assert oct_["is_paid"].value is True and kwd["discount"].value is None
    evil = rows["evil"]["customer_name"]
    assert evil.data_type == "s" and evil.value == hostile.replace("\x01", "\ufffd")  # text, never a formula


def test_a_long_export_goes_on_in_a_second_sheet_and_is_read_in_batches(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from ordersync import xlsx

    url = sqlite_with(tmp_path, ORDERS)
    monkeypatch.setattr(exporting, "BATCH", 2)
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)  # a header and three rows a sheet
    store = open_store(url, read_only=True)
    try:
        assert [len(b) for b in exporting.rows(store, "orders", ExportOptions())] == [2, 2, 1]
        export(store, "orders", "xlsx", tmp_path / "o.xlsx")
    finally:
        store.close()
    book = openpyxl.load_workbook(tmp_path / "o.xlsx")
    assert book.sheetnames == ["orders", "orders (2)"]
    assert [[c.value for c in r][1] for r in book["orders (2)"].iter_rows()] == ["order_id", "oct", "sep"]


def test_parquet_holds_decimals_and_zoned_timestamps(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    url = sqlite_with(tmp_path, ORDERS)
    store = open_store(url, read_only=True)
    export(store, "orders", "parquet", tmp_path / "o.parquet", options=ExportOptions(amounts="decimal", zone=OSLO))
    store.close()
    table = pq.read_table(tmp_path / "o.parquet")
    assert str(table.schema.field("total").type) == "decimal128(22, 3)"
    assert table.schema.field("created_at").type.tz == "Europe/Oslo"
    totals = dict(zip(table.column("order_id").to_pylist(), table.column("total").to_pylist(), strict=True))
    assert (totals["kwd"], totals["oct"], totals["sep"]) == (Decimal("-12.345"), Decimal("1200"), Decimal("1250.50"))


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_with(tmp_path, ORDERS)
    monkeypatch.setattr(exporting, "BATCH", 2)
    batches = exporting.rows

    def failing(*args: Any) -> Iterator[list[dict[str, Any]]]:
        for number, batch in enumerate(batches(*args)):
            if number == 1:
                raise OSError("disk full")
            yield batch

    monkeypatch.setattr(exporting, "rows", failing)
    store = open_store(url, read_only=True)
    for fmt in ("csv", "xlsx"):
        with pytest.raises(OSError, match="disk full"):
            export(store, "orders", fmt, tmp_path / f"o.{fmt}")
    store.close()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("o.", ".o."))]  # nor a partial file


@pytest.mark.parametrize(("args", "said"), [
    (["--since", "2026-13-01"], "--since '2026-13-01' is not a date or a time; write a date such as 2026-09-01"),
    (["--until", "yesterday"], "--until 'yesterday' is not a date or a time"),
    (["--since", "2026-10-01", "--until", "2026-10-01"], "--since 2026-10-01 is not before --until 2026-10-01"),
    (["--tz", "Europe/Olso"], "--tz 'Europe/Olso' is not a time zone; write an IANA name such as Europe/Oslo"),
    (["--tz", "../../etc/passwd"], "--tz '../../etc/passwd' is not a time zone"),
    (["--since", "0001-01-01", "--tz", "Europe/Oslo"], "--since '0001-01-01' is out of range"),
    (["--amounts", "cents"], "--amounts 'cents' is not known; use minor or decimal"),
    (["--on", "paid"], "--on 'paid' is not known; use created or updated"),
])
def test_a_wrong_date_zone_or_choice_is_one_line_with_status_2(tmp_path: Path, args: list[str], said: str) -> None:
    db = tmp_path / "absent.db"  # not even opened: the flags are checked first
    result = CliRunner().invoke(app, ["export", "orders", "--db", str(db), *args])
    assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not db.exists()


def test_xlsx_needs_a_file_and_names_the_extra_when_openpyxl_is_missing(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(f"sqlite:///{tmp_path / 'orders.db'}").close()
    runner = CliRunner()
    base = ["export", "orders", "--format", "xlsx", "--db", str(tmp_path / "orders.db")]
    to_stdout = runner.invoke(app, base)
    assert to_stdout.exit_code == 1 and "xlsx needs a file: pass --out PATH" in to_stdout.output
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "ordersync.xlsx", raising=False)
    monkeypatch.delattr(ordersync, "xlsx", raising=False)
    missing = runner.invoke(app, [*base, "--out", str(tmp_path / "o.xlsx")])
    assert missing.exit_code == 1 and not (tmp_path / "o.xlsx").exists()
    assert "xlsx export needs openpyxl: pip install 'ordersync[xlsx]'" in missing.output


def test_export_with_the_new_options_creates_no_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "orders", "--db", str(tmp_path / "typo.db"), "--format", "xlsx",
                                      "--out", str(tmp_path / "o.xlsx"), "--amounts", "decimal", "--tz", "UTC",
                                      "--since", "2026-01-01"])
    assert result.exit_code != 0 and not (tmp_path / "typo.db").exists() and not (tmp_path / "o.xlsx").exists()
