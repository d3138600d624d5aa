"""``ordersync report``: an accountant's month, per source and currency: orders, cancellations, refunds, gross and
net revenue in exact decimals, as CSV or as an Excel workbook (a summary sheet and the period's orders).

The figures come from :func:`ordersync.revenue.figures`, the query behind the demo's summary and the dashboard
too. Amounts are written the way ``export --amounts decimal`` writes them and the workbook is built with the
export's helpers (:mod:`ordersync.xlsx`): numbers with their currency's decimals, times as the wall clock of the
report's zone, text never a formula. docs/report.md says what each column counts.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ordersync import revenue
from ordersync.errors import OrdersyncError
from ordersync.export import BATCH, Column, ExportOptions, replacing, shaper
from ordersync.revenue import Figures, Period
from ordersync.store import Store, orders, payments
from ordersync.timerange import time_range

FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class ReportOptions:
    """Which orders the report covers: those created within ``period`` (of ``source``, or every source); days and
    months are those of ``zone`` (None: UTC)."""

    period: Period
    zone: ZoneInfo | None = None
    source: str | None = None

    @property
    def zone_name(self) -> str:
        return self.zone.key if self.zone else "UTC"


def choose_period(month: str | None, since: str | None, until: str | None, zone: tzinfo | None) -> Period:
    """``--month``, or ``--since`` / ``--until``, or by default the last complete month, in ``zone``;
    ``ValueError`` with one line naming the flag otherwise."""
    where = zone or UTC
    if month is not None and (since is not None or until is not None):
        raise ValueError("--month names a whole month; use it or --since / --until, not both")
    if month is not None:
        return revenue.parse_month(month, where)
    if since is None and until is None:
        return revenue.last_complete_month(where)
    bounds = time_range(since, until, where)
    return Period(f"{_local(bounds.since, where)}/{_local(bounds.until, where)}", bounds.since, bounds.until)


def _local(moment: datetime | None, zone: tzinfo) -> str:
    """A bound of ``--since`` / ``--until`` for the period's label: a date when it is midnight in the zone, else
    the local time with its offset; an open end is ``..`` (ISO 8601's open interval)."""
    if moment is None:
        return ".."
    local = moment.astimezone(zone)
    return str(local.date()) if local.time() == local.time().min else local.isoformat()


# --- the summary --------------------------------------------------------------------------------------------
def _column(name: str, kind: str, stored: str | None = None) -> Column:
    return Column(stored or name, name, kind, sa.Column(name, sa.BigInteger if kind == "money" else sa.Text))


SUMMARY = [_column(name, "plain") for name in (
    "period", "time_zone", "source", "api", "currency", "orders", "pending", "paid", "partially_cancelled",
    "cancelled", "unknown", "in_revenue")] + [_column(name, "money", stored) for name, stored in (
        ("gross_revenue", "gross_minor"), ("refunds", "refunds_minor"), ("net_revenue", "net_minor"),
        ("tax", "tax_minor"), ("cancelled_total", "cancelled_minor"), ("pending_total", "pending_minor"))]


def summary_rows(found: list[Figures], options: ReportOptions) -> list[dict[str, Any]]:
    """One row per source and currency, amounts as exact decimals in major units."""
    shape = shaper(SUMMARY, ExportOptions(amounts="decimal"))
    return [shape({**asdict(f), "in_revenue": f.sold, "gross_minor": f.gross_minor, "time_zone": options.zone_name})
            for f in found]


def summarize(store: Store, options: ReportOptions) -> list[Figures]:
    with store.engine.connect() as conn:
        return revenue.figures(conn, [options.period], options.source)


# --- the period's orders (the workbook's second sheet) -------------------------------------------------------
ORDERS = [
    _column("source", "plain"), _column("order_id", "plain"), _column("order_number", "plain"),
    _column("created_at", "time"), _column("status", "plain"), _column("lifecycle", "plain"),
    _column("in_revenue", "plain"), _column("currency", "plain"), _column("total", "money", "total_minor"),
    _column("refunds", "money", "refunds_minor"), _column("tax", "money", "tax_minor"),
    _column("customer_name", "plain"), _column("customer_email", "plain"),
]


def order_rows(store: Store, options: ReportOptions) -> Iterator[list[dict[str, Any]]]:
    """The orders the summary counts, by source and creation time, in batches, shaped for the workbook: whether
    each counts in revenue, and the money paid back on it."""
    paid_back = (sa.select(payments.c.source, payments.c.order_id,
                           (-sa.func.sum(payments.c.amount_minor)).label("refunds_minor"))
                 .where(payments.c.amount_minor < 0).group_by(payments.c.source, payments.c.order_id).subquery())
    period = options.period
    query = (sa.select(*(orders.c[c.stored] for c in ORDERS if c.stored in orders.c), orders.c.is_paid,
                       sa.func.coalesce(paid_back.c.refunds_minor, 0).label("refunds_minor"))
             .select_from(orders.outerjoin(paid_back, sa.and_(paid_back.c.source == orders.c.source,
                                                              paid_back.c.order_id == orders.c.order_id)))
             .where(orders.c.created_at.is_not(None))
             .order_by(orders.c.source, orders.c.created_at, orders.c.order_id))
    if period.start is not None:
        query = query.where(orders.c.created_at >= period.start)
    if period.end is not None:
        query = query.where(orders.c.created_at < period.end)
    if options.source:
        query = query.where(orders.c.source == options.source)
    shape = shaper(ORDERS, ExportOptions(amounts="decimal", zone=options.zone))
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        while chunk := result.fetchmany(BATCH):
            yield [shape(_order(row._mapping)) for row in chunk]


def _order(row: Any) -> dict[str, Any]:
    counted = revenue.in_revenue(row["lifecycle"], row["is_paid"])
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite's driver gives naive UTC
        created = created.replace(tzinfo=UTC)
    return {**row, "created_at": created.astimezone(UTC), "in_revenue": "yes" if counted else "no",
            "refunds_minor": int(row["refunds_minor"]), "lifecycle": row["lifecycle"] or revenue.UNKNOWN}


# --- writing ------------------------------------------------------------------------------------------------
def write_report(store: Store, options: ReportOptions, fmt: str, out: Path | None) -> list[Figures]:
    """Write the report to ``out`` (CSV: standard output when None) and return its figures."""
    if fmt not in FORMATS:
        raise OrdersyncError(f"unknown format '{fmt}'; use csv or xlsx")
    if out is not None and not out.parent.is_dir():
        raise OrdersyncError(f"cannot write {out}: the folder {out.parent} does not exist")
    found = summarize(store, options)
    rows = summary_rows(found, options)
    if fmt == "xlsx":
        if out is None:
            raise OrdersyncError("xlsx needs a file: pass --output PATH")
        _workbook(store, options, rows, out)
    elif out is None:
        _csv(rows, sys.stdout)
    else:
        with replacing(out) as partial, partial.open("w", encoding="utf-8-sig", newline="") as stream:
            _csv(rows, stream)
    return found


def _csv(rows: list[dict[str, Any]], stream: TextIO) -> None:
    """A header and one line per source and currency; decimals written digit for digit (``1250.50``)."""
    writer = csv.DictWriter(stream, fieldnames=[c.name for c in SUMMARY])
    writer.writeheader()
    writer.writerows(rows)


def _workbook(store: Store, options: ReportOptions, rows: list[dict[str, Any]], out: Path) -> None:
    """The summary sheet and the orders sheet, written beside ``out`` and renamed when complete."""
    try:
        from openpyxl import Workbook

        from ordersync import xlsx
    except ImportError:
        raise OrdersyncError("xlsx reports need openpyxl: pip install 'ordersync[xlsx]'") from None
    with replacing(out) as partial:
        book = Workbook(write_only=True)
        try:
            xlsx.add_sheets(book, iter([rows]), SUMMARY, "summary", options.zone_name)
            xlsx.add_sheets(book, order_rows(store, options), ORDERS, "orders", options.zone_name)
        finally:
            book.save(partial)  # also when failing: openpyxl then removes its temporary files
