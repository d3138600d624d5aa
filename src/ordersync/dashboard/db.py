"""What the dashboard reads: a read-only engine and one bounded query per view (SQLAlchemy Core, any destination).

Every query is answered from an index or bounded by a LIMIT, but for what a user asks for whole: the CSV of a
filtered list of orders, read a thousand orders at a time.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from ordersync.errors import StoreError
from ordersync.history import versions_of
from ordersync.model import LIFECYCLES
from ordersync.revenue import UNKNOWN, major
from ordersync.store import order_lines, order_versions, orders, payments, runs, stream_state
from ordersync.store.sqlite import read_only_engine

if TYPE_CHECKING:
    from ordersync.apis.base import SourceSettings
    from ordersync.status_model import LastRun

PAGE_SIZE = 50
MIN_YEAR, MAX_YEAR = 1900, 9000  # dates outside are refused as dates: the range arithmetic stays in the calendar
MAX_DAYS = 92  # the per-day chart covers at most a quarter: its cost grows with the orders in the range


def open_readonly(url: str, schema: str | None = None) -> Engine:
    """An engine that cannot write: SQLite opened ``mode=ro`` with ``query_only`` (``immutable`` on read-only
    media); PostgreSQL read-only transactions in ``schema`` (the configured one); DuckDB ``read_only``. The
    database must exist: the dashboard never creates one."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(f"'{url}' is not a database URL; use sqlite:///PATH (or a file path with --db)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:":
            raise StoreError("the dashboard reads a database file; pass --db PATH or a configured sqlite:///PATH")
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise StoreError(f"no database at {file}: run 'ordersync demo' or 'ordersync sync' first")
        return read_only_engine(file)
    if backend == "postgresql":
        options = "-c default_transaction_read_only=on" + (f" -c search_path={schema}" if schema else "")
        return sa.create_engine(parsed.set(drivername="postgresql+psycopg"), connect_args={"options": options})
    if backend == "duckdb":
        return sa.create_engine(parsed, connect_args={"read_only": True})
    raise StoreError(f"the dashboard cannot read '{backend}' databases; use sqlite, postgresql or duckdb")


def safe_url(url: str) -> str:
    """The URL as it may be shown: never a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(database)"


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- status -------------------------------------------------------------------------------------------------
def stream_status(conn: Connection, sources: Mapping[str, SourceSettings] | None = None) -> list[dict[str, Any]]:
    """Per source and stream: the latest run (result, counts) and the line ``ordersync status`` prints for it
    (:func:`ordersync.status.line`, the same words). ``sources``: the configuration's, for each API's time zone
    setting (without one, each API's default zone)."""
    from ordersync.status import report
    from ordersync.store.reads import stream_records

    result = []
    for source in report(stream_records(conn), sources or {}, "").sources:
        for s in source.streams:
            run = s.last_run
            result.append({
                "source": source.source, "stream": s.stream, "started_at": run.started_at if run else None,
                "status": run.status if run else None, **{count: _rows(run, count) for count in COUNTS},
                "rejected": s.rejects_outstanding, "healthy": s.healthy, "line": s.line,
            })
    return result


COUNTS = ("new", "changed", "unchanged")


def _rows(run: LastRun | None, count: str) -> int | None:
    """Orders and customers together, as the run wrote them (None: not recorded apart, before schema 6)."""
    if run is None or run.orders is None or run.customers is None:
        return None
    return int(getattr(run.orders, count) + getattr(run.customers, count))


# --- orders and revenue per day ------------------------------------------------------------------------------
def latest_order_day(conn: Connection) -> date | None:
    value = conn.execute(sa.select(sa.func.max(orders.c.created_at))).scalar()
    if value is None:
        return None
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date() if isinstance(value, datetime) else value


def chart_range(conn: Connection, start: str | None, end: str | None, days: int = 90) -> tuple[date, date]:
    """The range asked for, or the last ``days`` days up to the newest order; at most MAX_DAYS long."""
    last = _parse_day(end) or latest_order_day(conn) or datetime.now(UTC).date()
    first = _parse_day(start) or last - timedelta(days=days - 1)
    if first > last:
        first, last = last, first
    return max(first, last - timedelta(days=MAX_DAYS - 1)), last


def range_problems(start: str | None, end: str | None) -> list[str]:
    """What the range's form says about ``from`` and ``to``: a value that is not a date is named, never ignored
    in silence (the chart then shows the default end of the range)."""
    return [_not_a_date(value) for value in (start, end) if value and _parse_day(value) is None]


def _not_a_date(value: str) -> str:
    return f"'{value}' is not a date: use YYYY-MM-DD (years {MIN_YEAR} to {MAX_YEAR})"


# --- orders list --------------------------------------------------------------------------------------------
@dataclass
class OrderQuery:
    """The orders table's filters and its keyset position (newest first)."""

    source: str = ""
    status: str = ""
    q: str = ""  # a whole order number, id or e-mail; else a part of a name, e-mail or order number
    start: str = ""
    end: str = ""
    after: str = ""
    before: str = ""
    lifecycle: str = ""  # one of LIFECYCLES, or UNKNOWN (null)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """No NUL character reaches the database (PostgreSQL refuses it in text: a 500 for a typed ``%00``)."""
        for name in ("source", "status", "q", "start", "end", "after", "before", "lifecycle"):
            setattr(self, name, getattr(self, name).replace("\x00", ""))

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in (("source", self.source), ("status", self.status), ("lifecycle", self.lifecycle),
                                  ("q", self.q), ("from", self.start), ("to", self.end)) if v}


def _token(row: Any) -> str:
    created = row.created_at.isoformat() if isinstance(row.created_at, datetime) else str(row.created_at)
    return base64.urlsafe_b64encode(orjson.dumps([created, row.source, row.order_id])).decode()


def _untoken(token: str) -> tuple[datetime, str, str] | None:
    try:
        created, source, order_id = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (ValueError, TypeError, AttributeError, UnicodeError, orjson.JSONDecodeError):
        return None  # a crafted or damaged token: the first page
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        return None
    return moment, str(source).replace("\x00", ""), str(order_id).replace("\x00", "")


def _after(key: tuple[datetime, str, str], newer: bool) -> sa.ColumnElement[bool]:
    """Rows after ``key`` in newest-first order (or before it, ``newer``), without row-value syntax."""
    created, source, order_id = key
    op = (lambda c, v: c > v) if newer else (lambda c, v: c < v)
    bound = orders.c.created_at >= created if newer else orders.c.created_at <= created  # lets the index seek
    return sa.and_(bound, sa.or_(
        op(orders.c.created_at, created),
        sa.and_(orders.c.created_at == created, op(orders.c.source, source)),
        sa.and_(orders.c.created_at == created, orders.c.source == source, op(orders.c.order_id, order_id))))


LISTED = [orders.c.source, orders.c.order_id, orders.c.order_number, orders.c.status, orders.c.lifecycle,
          orders.c.created_at, orders.c.customer_email, orders.c.customer_name, orders.c.currency,
          orders.c.total_minor, orders.c.is_paid]


def filtered(conn: Connection, query: OrderQuery) -> sa.Select[Any]:
    """The orders the filters select, with a creation time, unordered; what cannot be read as a filter (a date, a
    lifecycle) is said in ``query.errors`` and left out."""
    select = sa.select(*LISTED).where(orders.c.created_at.is_not(None))
    if query.source:
        select = select.where(orders.c.source == query.source)
    if query.status:
        select = select.where(orders.c.status == query.status)
    if query.lifecycle in (*LIFECYCLES, UNKNOWN):
        select = select.where(orders.c.lifecycle.is_(None) if query.lifecycle == UNKNOWN
                              else orders.c.lifecycle == query.lifecycle)
    elif query.lifecycle:
        query.errors.append(f"'{query.lifecycle}' is not a lifecycle: use {', '.join((*LIFECYCLES, UNKNOWN))}")
    searched = _search(conn, query.q.strip())
    if searched is not None:
        select = select.where(searched)
    for value, is_start in ((query.start, True), (query.end, False)):
        day = _parse_day(value) if value else None
        if value and day is None:
            query.errors.append(_not_a_date(value))
        elif day is not None:
            select = select.where(orders.c.created_at >= _utc(day) if is_start
                                  else orders.c.created_at < _utc(day + timedelta(days=1)))
    return select


def _search(conn: Connection, q: str) -> sa.ColumnElement[bool] | None:
    """The search box: a whole order number, order id or e-mail that some order holds finds exactly those orders
    (``N7`` is not ``N70``); anything else is a part of a customer's name, e-mail or an order number, in any
    case."""
    if not q:
        return None
    whole = sa.or_(orders.c.order_number == q, orders.c.order_id == q, orders.c.customer_email == q)
    if conn.execute(sa.select(sa.literal(1)).where(whole).limit(1)).first() is not None:
        return whole
    return sa.or_(*(c.icontains(q, autoescape=True)
                    for c in (orders.c.customer_name, orders.c.customer_email, orders.c.order_number)))


def order_page(conn: Connection, query: OrderQuery) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of orders (newest first) and the tokens of the next and previous pages."""
    select = filtered(conn, query)
    keys = (orders.c.created_at, orders.c.source, orders.c.order_id)
    backwards = bool(query.before) and not query.after
    key = _untoken(query.before if backwards else query.after) if (query.after or query.before) else None
    if key is not None:
        select = select.where(_after(key, newer=backwards))
    select = select.order_by(*(c.asc() if backwards else c.desc() for c in keys))
    rows = list(conn.execute(select.limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if backwards:
        rows.reverse()
    next_token = _token(rows[-1]) if rows and (more or backwards) else None
    prev_token = _token(rows[0]) if rows and (key is not None and (not backwards or more)) else None
    return [r._asdict() for r in rows], next_token, prev_token


# --- the filtered list as CSV --------------------------------------------------------------------------------
CSV_BATCH = 1000
CSV_HEADER = ("source", "order_id", "order_number", "created_at", "status", "lifecycle", "paid", "customer_name",
              "customer_email", "currency", "total")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def orders_csv(engine: Engine, select: sa.Select[Any]) -> Iterator[str]:
    """The orders ``select`` finds (:func:`filtered`), newest first, as CSV text: a byte order mark (spreadsheets
    then read UTF-8) and a header, then :data:`CSV_BATCH` orders a chunk. Each chunk is its own short read, after
    the last order sent (keyset), so that memory stays flat and no connection outlives a chunk (the response is
    sent from whichever thread is free). Amounts are exact decimals in major units."""
    keys = (orders.c.created_at, orders.c.source, orders.c.order_id)
    yield "\ufeff" + _csv_text([CSV_HEADER])
    key: tuple[Any, str, str] | None = None
    while True:
        page = select if key is None else select.where(_after(key, newer=False))
        with engine.connect() as conn:
            rows = conn.execute(page.order_by(*(c.desc() for c in keys)).limit(CSV_BATCH)).all()
        if rows:
            yield _csv_text([_csv_row(r) for r in rows])
        if len(rows) < CSV_BATCH:
            return
        key = (rows[-1].created_at, rows[-1].source, rows[-1].order_id)


def _csv_row(r: Any) -> list[Any]:
    total = None if r.total_minor is None else major(r.total_minor, r.currency)
    created = r.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(r.created_at, datetime) else r.created_at
    texts = (r.source, r.order_id, r.order_number, created, r.status, r.lifecycle or UNKNOWN,
             "yes" if r.is_paid else "no", r.customer_name, r.customer_email, r.currency)
    return [*(_as_text(v) for v in texts), total]


def _as_text(value: str | None) -> str | None:
    """Text a spreadsheet would run as a formula (``=HYPERLINK(...)`` as a customer's name) starts with ``'``."""
    return "'" + value if value and value.startswith(_FORMULA) else value


def _csv_text(rows: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


# --- one order ----------------------------------------------------------------------------------------------
def order_detail(conn: Connection, source: str, order_id: str) -> dict[str, Any] | None:
    if "\x00" in source + order_id:  # no stored key holds a NUL (PostgreSQL refuses it in text: a 500 for a %00)
        return None
    row = conn.execute(sa.select(orders).where(orders.c.source == source, orders.c.order_id == order_id)).first()
    if row is None:
        return None
    children = {}
    for name, table, key in (("lines", order_lines, order_lines.c.line_no),
                             ("payments", payments, payments.c.payment_no)):
        children[name] = [r._asdict() for r in conn.execute(
            sa.select(table).where(table.c.source == source, table.c.order_id == order_id).order_by(key).limit(1000))]
    return {"order": row._asdict(), **children, "versions": versions_of(conn, order_versions, orders, source, order_id)}


# --- run history --------------------------------------------------------------------------------------------
def recent_runs(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """The last ``limit`` runs, oldest first, with their duration in seconds and rows read."""
    rows = conn.execute(sa.select(runs).order_by(runs.c.run_id.desc()).limit(limit)).all()
    result = []
    for r in reversed(rows):
        seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else None
        result.append({**r._asdict(), "seconds": seconds,
                       "rows": (r.new_rows or 0) + (r.changed_rows or 0) + (r.unchanged_rows or 0)})
    return result


def known_sources(conn: Connection) -> list[str]:
    """Every source a sync has written, from the sync state (one row per stream), sorted."""
    return sorted({r.source for r in conn.execute(sa.select(stream_state.c.source).distinct())})


def distinct_values(conn: Connection) -> dict[str, list[str]]:
    """Sources and statuses for the filter menus, from the last runs and a bounded sample (never a table scan)."""
    sources = known_sources(conn)
    statuses: set[str] = set()
    for source in sources:  # the newest orders of each source tell which status words it uses
        statuses.update(s for (s,) in conn.execute(
            sa.select(orders.c.status).where(orders.c.source == source, orders.c.created_at.is_not(None))
            .order_by(orders.c.created_at.desc()).limit(500)) if s)
    return {"sources": sources, "statuses": sorted(statuses), "lifecycles": [*LIFECYCLES, UNKNOWN]}


def _parse_day(value: str | None) -> date | None:
    """A day from a query parameter; None when it is not one, or lies so far out (year 1, 9999) that the day
    after it or the range before it would leave the calendar."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None
