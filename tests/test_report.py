"""``ordersync report`` as an accountant runs it (issue 27 part 3): on a database synced from every API's sandbox,
on SQLite, PostgreSQL and DuckDB, the CSV and the workbook (read back with openpyxl) hold per source and currency
the figures this test computes on its own, in Python, from the stored rows: orders by lifecycle, gross and net
revenue, refunds, tax, cancelled and pending totals, in exact decimals, by the days of the zone asked for."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ordersync.apis.base import Rows
from ordersync.cli import app
from ordersync.errors import EXIT_USAGE
from ordersync.store import open_store, order_lines, orders, payments
from ordersync.values import exponent
from tests.support import in_process

OSLO = ZoneInfo("Europe/Oslo")
APIS = ("frontcore", "eguma", "firespring", "prio")
SINCE, UNTIL = "2025-06-01", "2026-06-15"  # the year before the sandboxes' anchor (2026-06-15)


def ordersync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


@dataclass
class Synced:
    url: str
    refunded: str  # an e-guma order, in the range, that lost a line and was paid back part of its money


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "duckdb"])
def synced(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    """Every sandbox's orders from a real sync; then an e-guma order in the range loses a line (a refund) and a
    second sync records it. Only read by the tests: one per destination for the module."""
    kind = request.param
    folder = tmp_path_factory.mktemp(kind)
    url = (request.getfixturevalue("pg_server").new_database() if kind == "postgresql"
           else f"{kind}:///{folder / ('orders.db' if kind == 'sqlite' else 'orders.duckdb')}")
    store = open_store(url)
    try:
        for api in APIS:
            with in_process(api, orders=100, seed=11) as sandbox:
                assert all(r.ok for r in sandbox.sync(store, api, sandbox.settings())), api
                if api == "eguma":
                    refunded = _two_lines(store.engine)
                    sandbox.control("PATCH", f"orders/{refunded}", {"cancel_line": 0})
                    assert all(r.ok for r in sandbox.sync(store, api, sandbox.settings()))
    finally:
        store.close()
    return Synced(url, refunded)


def _two_lines(engine: sa.Engine) -> str:
    """A paid e-guma order of the range with two lines or more, the newest."""
    lines = sa.select(order_lines.c.order_id).where(order_lines.c.source == "eguma").group_by(
        order_lines.c.order_id).having(sa.func.count() > 1)
    with engine.connect() as conn:
        return str(conn.execute(sa.select(orders.c.order_id).where(
            orders.c.source == "eguma", orders.c.lifecycle == "paid", orders.c.order_id.in_(lines),
            orders.c.created_at >= datetime(2026, 1, 1, tzinfo=UTC)).order_by(orders.c.created_at.desc())
        ).scalars().first())


def expected(url: str, since: datetime, until: datetime) -> dict[tuple[str, str], dict[str, str]]:
    """The report's rows as this test reads the definition (docs/report.md), from the stored rows in Python."""
    store = open_store(url, read_only=True)
    try:
        with store.engine.connect() as conn:
            stored = conn.execute(sa.select(orders.c.source, orders.c.order_id, orders.c.currency,
                                            orders.c.lifecycle, orders.c.is_paid, orders.c.total_minor,
                                            orders.c.tax_minor, orders.c.created_at)).all()
            back = dict(((s, o), -int(a)) for s, o, a in conn.execute(
                sa.select(payments.c.source, payments.c.order_id, sa.func.sum(payments.c.amount_minor))
                .where(payments.c.amount_minor < 0).group_by(payments.c.source, payments.c.order_id)))
    finally:
        store.close()
    sums: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for r in stored:
        created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
        if not since <= created < until:
            continue
        row = sums[(r.source, r.currency)]
        row["orders"] += 1
        row[r.lifecycle or "unknown"] += 1
        if r.lifecycle == "paid" or (r.lifecycle == "partially_cancelled" and r.is_paid):
            row["in_revenue"] += 1
            row["net"] += r.total_minor
            row["refunds"] += back.get((r.source, r.order_id), 0)
            row["untaxed"] += r.tax_minor is None
            row["tax"] += r.tax_minor or 0
        elif r.lifecycle in ("cancelled", "pending"):
            row[f"{r.lifecycle}_total"] += r.total_minor
    result = {}
    for (source, currency), row in sums.items():
        def amount(minor: int, currency: str = currency) -> str:
            return str(Decimal(minor).scaleb(-exponent(currency)))
        result[(source, currency)] = {
            **{k: str(row[k]) for k in ("orders", "pending", "paid", "partially_cancelled", "cancelled", "unknown",
                                        "in_revenue")},
            "gross_revenue": amount(row["net"] + row["refunds"]), "refunds": amount(row["refunds"]),
            "net_revenue": amount(row["net"]), "tax": "" if row["untaxed"] else amount(row["tax"]),
            "cancelled_total": amount(row["cancelled_total"]), "pending_total": amount(row["pending_total"])}
    return result


def test_the_report_as_csv_and_as_a_workbook_on_every_destination(synced: Synced, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    done = ordersync("report", "--db", synced.url, "--since", SINCE, "--until", UNTIL, "--tz", "Europe/Oslo")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    want = expected(synced.url, datetime(2025, 6, 1, tzinfo=OSLO), datetime(2026, 6, 15, tzinfo=OSLO))
    got = {(r["source"], r["currency"]): {k: r[k] for k in next(iter(want.values()))} for r in rows}
    assert got == want and len(got) == 4
    assert all(r["period"] == f"{SINCE}/{UNTIL}" and r["time_zone"] == "Europe/Oslo" for r in rows)
    assert Decimal(got[("eguma", "CHF")]["refunds"]) > 0 and int(got[("prio", "EUR")]["cancelled"]) > 0
    assert "Europe/Oslo" in done.stderr and "4 source(s)" in done.stderr

    book_path = tmp_path / "may.xlsx"
    done = ordersync("report", "--db", synced.url, "--month", "2026-05", "--tz", "Europe/Oslo", "--format", "xlsx",
                     "--output", str(book_path))
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(book_path)
    assert book.sheetnames == ["summary", "orders"]
    header, *summary = [[c.value for c in r] for r in book["summary"].iter_rows()]
    may = expected(synced.url, datetime(2026, 5, 1, tzinfo=OSLO), datetime(2026, 6, 1, tzinfo=OSLO))
    assert {(r[2], r[4]): {k: _value(k, v) for k, v in zip(header, r, strict=True) if k in want[("eguma", "CHF")]}
            for r in summary} == {key: {k: _value(k, v) for k, v in row.items()} for key, row in may.items()}
    _check_orders_sheet(book["orders"], {(r[2], r[4]): dict(zip(header, r, strict=True)) for r in summary})


MONEY = ("gross_revenue", "refunds", "net_revenue", "tax", "cancelled_total", "pending_total")


def _value(name: str, value: Any) -> Any:
    """A workbook cell, or the CSV's text, as a value: amounts compared as numbers (12.5 is 12.50), counts as
    text, nothing as None."""
    if value is None or value == "":
        return None
    return Decimal(str(value)) if name in MONEY else str(value)


def _check_orders_sheet(sheet: Any, summary: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The orders sheet holds the summary's orders, in May in Oslo, and its orders in revenue add up to the net."""
    header, *rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert header[3] == "created_at (Europe/Oslo)" and "lifecycle" in header and "in_revenue" in header
    orders_of = [dict(zip(header, r, strict=True)) for r in rows]
    assert len(orders_of) == sum(s["orders"] for s in summary.values())
    assert all(datetime(2026, 5, 1) <= o["created_at (Europe/Oslo)"] < datetime(2026, 6, 1) for o in orders_of)
    for (source, currency), s in summary.items():
        mine = [o for o in orders_of if o["source"] == source and o["currency"] == currency]
        net = sum(Decimal(str(o["total"])) for o in mine if o["in_revenue"] == "yes")
        assert net == Decimal(str(s["net_revenue"])) and len(mine) == s["orders"], source
        assert sum(o["lifecycle"] == "cancelled" for o in mine) == s["cancelled"]


def test_a_refund_counts_against_its_month(synced: Synced) -> None:
    """The e-guma order that lost a line: its refund is its money paid back, its total what stands."""
    store = open_store(synced.url, read_only=True)
    try:
        with store.engine.connect() as conn:
            created, total = conn.execute(sa.select(orders.c.created_at, orders.c.total_minor).where(
                orders.c.source == "eguma", orders.c.order_id == synced.refunded)).one()
            paid_back = -int(conn.execute(sa.select(sa.func.sum(payments.c.amount_minor)).where(
                payments.c.source == "eguma", payments.c.order_id == synced.refunded,
                payments.c.amount_minor < 0)).scalar_one())
    finally:
        store.close()
    assert paid_back > 0
    month = f"{created:%Y-%m}"  # UTC, the default zone
    done = CliRunner().invoke(app, ["report", "--db", synced.url, "--month", month, "--source", "eguma"])
    assert done.exit_code == 0, done.stderr
    [row] = list(csv.DictReader(io.StringIO(done.stdout)))
    assert Decimal(row["refunds"]) >= Decimal(paid_back) / 100
    assert Decimal(row["gross_revenue"]) == Decimal(row["net_revenue"]) + Decimal(row["refunds"])
    assert Decimal(row["net_revenue"]) >= Decimal(total) / 100


def test_a_wrong_month_range_zone_or_format_is_one_line_before_the_database_is_opened(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such.db")
    for args, said in ((["--month", "2026-13"], "--month '2026-13' is not a month; write YYYY-MM"),
                       (["--month", "2026-11", "--since", "2026-11-01"], "use it or --since / --until, not both"),
                       (["--since", "first of May"], "--since 'first of May' is not a date or a time"),
                       (["--since", "2026-06-01", "--until", "2026-05-01"], "is not before --until"),
                       (["--tz", "Mars/Olympus"], "--tz 'Mars/Olympus' is not a time zone"),
                       (["--format", "pdf"], "--format 'pdf' is not known; use csv or xlsx")):
        done = CliRunner().invoke(app, ["report", "--db", missing, *args])
        assert done.exit_code == EXIT_USAGE and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = CliRunner().invoke(app, ["report", "--db", missing])
    assert done.exit_code != 0 and "no database at" in done.stderr and not Path(missing).exists()
    done = CliRunner().invoke(app, ["report", "--db", missing, "--format", "xlsx"])
    assert done.exit_code != 0 and not Path(missing).exists()


def _order(order_id: str, created: datetime, total: int) -> dict[str, Any]:
    return {"order_id": order_id, "api": "frontcore", "order_number": f"N{order_id}", "status": None,
            "currency": "NOK", "total_minor": total, "discount_minor": 0, "tax_minor": total // 5, "is_paid": True,
            "customer_id": None, "customer_name": "Kari", "customer_email": None, "created_at": created,
            "updated_at": None, "raw": {"id": order_id}, "lifecycle": "paid", "adjustment_minor": 0}


def test_the_zone_decides_the_month_and_the_report_only_reads(tmp_path: Path) -> None:
    """An order placed at 00:30 on 1 May in Oslo is April's in UTC and May's with --tz Europe/Oslo; the database
    is byte for byte the same afterwards and its folder gains no file (no write, no lock)."""
    path = tmp_path / "db" / "orders.db"
    path.parent.mkdir()
    store = open_store(f"sqlite:///{path}")
    rows = [_order("1", datetime(2026, 5, 3, tzinfo=UTC), 125050), _order("2", datetime(2026, 4, 30, 22, 30,
                                                                                          tzinfo=UTC), 1000)]
    store.write_page("shop", "frontcore", "orders", Rows(orders=rows), {"max_id": 1})  # type: ignore[arg-type]
    store.close()
    before = (path.read_bytes(), sorted(p.name for p in path.parent.iterdir()))
    utc, oslo = tmp_path / "utc.csv", tmp_path / "oslo.csv"
    for out, zone in ((utc, []), (oslo, ["--tz", "Europe/Oslo"])):
        done = CliRunner().invoke(app, ["report", "--db", str(path), "--month", "2026-05", "--output", str(out),
                                        *zone])
        assert done.exit_code == 0, done.stderr
    assert (path.read_bytes(), sorted(p.name for p in path.parent.iterdir())) == before
    assert utc.read_text(encoding="utf-8").startswith("\ufeffperiod,time_zone,source")  # Excel then reads UTF-8
    assert "2026-05,UTC,shop,frontcore,NOK,1,0,1,0,0,0,1,1250.50,0.00,1250.50,250.10,0.00,0.00" in utc.read_text()
    assert "2026-05,Europe/Oslo,shop,frontcore,NOK,2,0,2,0,0,0,2,1260.50,0.00,1260.50,252.10,0.00,0.00" in \
        oslo.read_text()


def test_the_documented_sql_gives_the_reports_revenue(synced: Synced) -> None:
    """docs/report.md's query, as written, for May 2026 in UTC, against the report of that month."""
    text = (Path(__file__).parents[1] / "docs" / "report.md").read_text(encoding="utf-8")
    sql = text.split("<!-- sql: month revenue -->")[1].split("```sql\n")[1].split("```")[0]
    sql = sql.replace("2026-11-01", "2026-05-01").replace("2026-12-01", "2026-06-01")
    store = open_store(synced.url, read_only=True)
    try:
        with store.engine.connect() as conn:
            rows = {(r.source, r.currency): (int(r.net_revenue_minor), int(r.refunds_minor))
                    for r in conn.execute(sa.text(sql))}
    finally:
        store.close()
    done = CliRunner().invoke(app, ["report", "--db", synced.url, "--month", "2026-05"])
    assert done.exit_code == 0, done.stderr
    report = {(r["source"], r["currency"]): (r["net_revenue"], r["refunds"])
              for r in csv.DictReader(io.StringIO(done.stdout)) if int(r["in_revenue"])}
    assert {k: (str(Decimal(n).scaleb(-2)), str(Decimal(b).scaleb(-2))) for k, (n, b) in rows.items()} == report
    assert len(report) == 4
