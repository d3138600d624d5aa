"""What the dashboard reads: a read-only engine and one bounded query per view (SQLAlchemy Core, any destination).

Every query is answered from an index or bounded by a LIMIT: nothing here reads a whole published table.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from ordersync.errors import StoreError
from ordersync.history import versions_of
from ordersync.store import order_lines, order_versions, orders, payments, runs, stream_state
from ordersync.store.sqlite import read_only_engine

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


def _day(conn: Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    if conn.dialect.name == "sqlite":  # stored as ISO text in UTC: the day is its first ten characters
        return sa.func.substr(column, 1, 10)
    return sa.cast(column, sa.Date)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- status -------------------------------------------------------------------------------------------------
def stream_status(conn: Connection) -> list[dict[str, Any]]:
    """Per source and stream: the last run (result, counts, error) and the stored cursor."""
    last = sa.select(sa.func.max(runs.c.run_id).label("run_id")).group_by(runs.c.source, runs.c.stream).subquery()
    latest = sa.select(runs).join(last, runs.c.run_id == last.c.run_id)
    last_runs = {(r.source, r.stream): r for r in conn.execute(latest)}
    states = {(r.source, r.stream): orjson.loads(r.state) for r in conn.execute(sa.select(stream_state))}
    result = []
    for key in sorted(set(last_runs) | set(states)):
        run, state = last_runs.get(key), states.get(key) or {}
        cursor = {k: v for k, v in state.items() if v is not None and k != "pending" and "sweep" not in k}
        sweep = next((v for k, v in state.items() if "sweep" in k and v), None)
        rejected = getattr(run, "rejected_rows", None) if run is not None else None
        error = (run.error or "").strip().splitlines() if run is not None else []
        result.append({
            "source": key[0], "stream": key[1],
            "started_at": run.started_at if run else None, "finished_at": run.finished_at if run else None,
            "status": run.status if run else None,
            "new": run.new_rows if run else None, "changed": run.changed_rows if run else None,
            "unchanged": run.unchanged_rows if run else None, "rejected": rejected,
            "cursor": ", ".join(f"{k}={v}" for k, v in cursor.items()) + (" (resumes mid-stream)"
                                                                          if state.get("pending") else ""),
            "next_sweep": sweep, "error": error[0] if error else "",
        })
    return result


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


def daily(conn: Connection, first: date, last: date) -> list[dict[str, Any]]:
    """Orders and paid revenue per day, source and currency, for orders created in ``[first, last]``. Both as
    Python ints on every destination: PostgreSQL's sum of a bigint is ``numeric`` (a ``Decimal`` here, which the
    charts cannot mix with floats), DuckDB's a HUGEINT."""
    day = _day(conn, orders.c.created_at).label("day")
    paid_total = sa.case((orders.c.is_paid.is_(True), orders.c.total_minor), else_=0)
    query = (
        sa.select(day, orders.c.source, orders.c.currency, sa.func.count().label("orders"),
                  sa.func.coalesce(sa.func.sum(paid_total), 0).label("revenue_minor"))
        .where(orders.c.created_at >= _utc(first), orders.c.created_at < _utc(last + timedelta(days=1)))
        .group_by(day, orders.c.source, orders.c.currency)
        .order_by(day, orders.c.source, orders.c.currency)
    )
    return [{**r._asdict(), "day": str(r.day)[:10], "orders": int(r.orders), "revenue_minor": int(r.revenue_minor)}
            for r in conn.execute(query)]


# --- orders list --------------------------------------------------------------------------------------------
@dataclass
class OrderQuery:
    """The orders table's filters and its keyset position (newest first)."""

    source: str = ""
    status: str = ""
    q: str = ""  # an e-mail (prefix, with @), or an order number or id (exact)
    start: str = ""
    end: str = ""
    after: str = ""
    before: str = ""
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """No NUL character reaches the database (PostgreSQL refuses it in text: a 500 for a typed ``%00``)."""
        for name in ("source", "status", "q", "start", "end", "after", "before"):
            setattr(self, name, getattr(self, name).replace("\x00", ""))

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in (("source", self.source), ("status", self.status), ("q", self.q),
                                  ("from", self.start), ("to", self.end)) if v}


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


def order_page(conn: Connection, query: OrderQuery) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of orders (newest first) and the tokens of the next and previous pages."""
    columns = [orders.c.source, orders.c.order_id, orders.c.order_number, orders.c.status, orders.c.created_at,
               orders.c.customer_email, orders.c.customer_name, orders.c.currency, orders.c.total_minor,
               orders.c.is_paid]
    select = sa.select(*columns).where(orders.c.created_at.is_not(None))
    if query.source:
        select = select.where(orders.c.source == query.source)
    if query.status:
        select = select.where(orders.c.status == query.status)
    q = query.q.strip()
    if "@" in q:
        select = select.where(orders.c.customer_email >= q, orders.c.customer_email < q + "\U0010ffff")
    elif q:
        select = select.where(sa.or_(orders.c.order_number == q, orders.c.order_id == q))
    for value, is_start in ((query.start, True), (query.end, False)):
        day = _parse_day(value) if value else None
        if value and day is None:
            query.errors.append(f"'{value}' is not a date: use YYYY-MM-DD (years 1900 to 9000)")
        elif day is not None:
            select = select.where(orders.c.created_at >= _utc(day) if is_start
                                  else orders.c.created_at < _utc(day + timedelta(days=1)))
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


def distinct_values(conn: Connection) -> dict[str, list[str]]:
    """Sources and statuses for the filter menus, from the last runs and a bounded sample (never a table scan)."""
    sources = sorted({r.source for r in conn.execute(sa.select(stream_state.c.source).distinct())})
    statuses: set[str] = set()
    for source in sources:  # the newest orders of each source tell which status words it uses
        statuses.update(s for (s,) in conn.execute(
            sa.select(orders.c.status).where(orders.c.source == source, orders.c.created_at.is_not(None))
            .order_by(orders.c.created_at.desc()).limit(500)) if s)
    return {"sources": sources, "statuses": sorted(statuses)}


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
