"""The dashboard in-process: read-only by construction, the token gate, clear errors, no secrets, bounded pages."""

from __future__ import annotations

import asyncio
import html
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.types import ASGIApp

from ordersync import config as cfg
from ordersync import status
from ordersync.apis.base import Rows
from ordersync.dashboard import create_app, is_loopback
from ordersync.dashboard.app import money
from ordersync.dashboard.db import PAGE_SIZE, chart_range, open_readonly, safe_url
from ordersync.errors import StoreError
from ordersync.store import WriteResult, open_store, orders
from tests.registry import API_NAMES
from tests.support import in_process


def _db(tmp_path: Path, count: int = 120) -> Path:
    path = tmp_path / "orders.db"
    store = open_store(f"sqlite:///{path}")
    rows = [{"order_id": f"o{i:04d}", "order_number": f"N{i}", "status": "paid" if i % 3 else "cancelled",
             "currency": "NOK", "total_minor": 100 * i, "discount_minor": 0, "tax_minor": 0, "is_paid": bool(i % 3),
             "customer_id": "c", "customer_name": "Kari", "customer_email": f"kari{i % 7}@example.org",
             "created_at": datetime(2026, 9, 1 + i % 28, 8, i % 60, tzinfo=UTC), "updated_at": None,
             "raw": {"id": i}} for i in range(count)]
    store.write_page("shop", "frontcore", "orders", Rows(orders=rows), {"max_id": count})
    run = store.start_run("shop", "orders")
    store.finish_run(run, "failed", WriteResult(new=count), 3, error="HTTP 500 from /v2/orders\nsecond line")
    store.close()
    return path


def fetch(app: ASGIApp, *paths: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """GET each path in turn in one client session (cookies kept), in-process."""
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                     headers=headers) as c:
            return [await c.get(path) for path in paths]

    return asyncio.run(run())


def get(app: ASGIApp, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return fetch(app, path, headers=headers)[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _db(tmp_path)


def test_every_page_answers_and_the_database_is_not_written(db: Path) -> None:
    before = (db.stat().st_mtime_ns, db.stat().st_size)
    app = create_app(f"sqlite:///{db}")
    for path in ("/", "/orders", "/orders?q=kari3%40", "/orders/shop/o0005", "/runs", "/static/style.css"):
        assert get(app, path).status_code == 200, path
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before


def test_the_engine_refuses_to_write(db: Path) -> None:
    engine = open_readonly(f"sqlite:///{db}")
    with engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly|read-only|query_only"):
        conn.execute(orders.delete())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 120


def test_a_missing_database_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database at .*missing.db: run 'ordersync demo' or 'ordersync sync'"):
        create_app(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="cannot read .* as an ordersync database"):
        create_app(f"sqlite:///{other}")


def test_orders_page_pages_with_a_bounded_size_and_the_search_narrows(db: Path) -> None:
    app = create_app(f"sqlite:///{db}")
    first = get(app, "/orders").text
    assert first.count('href="/orders/shop/') == PAGE_SIZE and 'id="next"' in first and 'id="prev"' not in first
    found = get(app, "/orders?q=N7").text
    assert found.count('href="/orders/shop/') == 1 and "/orders/shop/o0007" in found
    bad = get(app, "/orders?from=yesterday").text
    assert "&#39;yesterday&#39; is not a date: use YYYY-MM-DD" in bad


def test_status_shows_the_last_error_in_one_line(db: Path) -> None:
    page = get(create_app(f"sqlite:///{db}"), "/").text
    assert "HTTP 500 from /v2/orders" in page and "second line" not in page


def test_another_interface_needs_the_token(db: Path) -> None:
    app = create_app(f"sqlite:///{db}", token="s3cret-token")
    assert get(app, "/").status_code == 401
    assert get(app, "/?token=wrong").status_code == 401
    opened, later = fetch(app, "/orders?token=s3cret-token&source=shop", "/")
    assert opened.status_code == 303 and opened.headers["location"] == "/orders?source=shop"
    assert later.status_code == 200  # the cookie set by the redirect
    assert get(app, "/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert "s3cret-token" not in get(app, "/", headers={"Authorization": "Bearer s3cret-token"}).text


def test_loopback_detection_and_urls_without_passwords() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert "hunter2" not in safe_url("postgresql://me:hunter2@db.example.org/orders")


def test_cli_refuses_another_interface_without_a_token(db: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ORDERSYNC_DASHBOARD_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "ordersync", "dashboard", "--db", str(db), "--host", "0.0.0.0",
                             "--port", "0"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "pass --token" in result.stderr
    missing = subprocess.run([sys.executable, "-m", "ordersync", "dashboard", "--db", str(tmp_path / "nope.db"),
                              "--port", "0"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "no database at" in missing.stderr and "Traceback" not in missing.stderr


def test_no_secret_of_the_configuration_is_rendered(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "ordersync.toml"
    config.write_text(f'[destination]\nurl = "sqlite:///{db}"\n\n[sources.shop]\ntype = "frontcore"\n'
                      'api_key = "fc-very-secret-key"\n')
    app = create_app(cfg.load(str(config)).destination)
    for path in ("/", "/orders", "/orders/shop/o0001", "/runs"):
        assert "fc-very-secret-key" not in get(app, path).text


# --- every page on every destination, over the data of a real sync --------------------------------------------
DESTINATIONS = ["sqlite", "postgresql", "duckdb"]
SYNCED_APIS = API_NAMES  # every API: their currencies and amounts differ


@dataclass
class Synced:
    url: str
    source: str  # a source with an order that changed between the two syncs
    changed: str  # that order's id: its page shows a version history
    found: tuple[str, str, str, str]  # an order's source, id, customer e-mail and status: the search finds it
    count: int  # orders stored
    revenue: dict[tuple[str, str], int]  # (source, currency) -> revenue in minor units, from SQL


@pytest.fixture(params=DESTINATIONS)
def synced(request: pytest.FixtureRequest, tmp_path: Path) -> Synced:
    """A destination of each kind holding every sandbox's orders from two real syncs (one order changed between
    them, so it has history), and a failed run with a two-line error. PostgreSQL: a fresh database on the suite's
    server (its sums are ``numeric``, which once broke the status page)."""
    kind = request.param
    url = (str(request.getfixturevalue("pg_url")) if kind == "postgresql"
           else f"{kind}:///{tmp_path / ('orders.db' if kind == 'sqlite' else 'orders.duckdb')}")
    store = open_store(url)
    try:
        for api in SYNCED_APIS:
            sandbox = in_process(api, orders=60, seed=5)
            with sandbox:
                assert all(r.ok for r in sandbox.sync(store, api, sandbox.settings())), api
                if api == "frontcore":
                    changed = sandbox.sandbox.order_ids()[0]
                    sandbox.control("PATCH", f"orders/{changed}", {})
                    assert all(r.ok for r in sandbox.sync(store, api, sandbox.settings()))
        run = store.start_run("broken", "orders")
        store.finish_run(run, "failed", WriteResult(), 1, error="HTTP 500 from /v2/orders\nsecond line")
        with store.engine.connect() as conn:  # the status page's range: the 90 days up to the newest order
            first, last = chart_range(conn, None, None)
            start, end = (datetime.combine(d, time(), UTC) for d in (first, last + timedelta(days=1)))
            sold = sa.or_(orders.c.lifecycle == "paid",  # never cancelled: revenue means sold (docs/report.md)
                          sa.and_(orders.c.lifecycle == "partially_cancelled", orders.c.is_paid.is_(True)))
            paid = conn.execute(sa.select(orders.c.source, orders.c.currency, sa.func.sum(orders.c.total_minor))
                                .where(sold, orders.c.created_at >= start,
                                       orders.c.created_at < end).group_by(orders.c.source, orders.c.currency))
            revenue = {(s, c or "-"): int(total) for s, c, total in paid}
            found = conn.execute(sa.select(orders.c.source, orders.c.order_id, orders.c.customer_email,
                                           orders.c.status).where(orders.c.customer_email.is_not(None),
                                                                  orders.c.status.is_not(None)).limit(1)).one()
            count = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
    finally:
        store.close()
    return Synced(url, "frontcore", changed, tuple(found), count, revenue)


AGO = re.compile(r" \((just now|[^()]* ago)\)")  # a page and a command a minute apart say the same otherwise


def status_lines(page: str) -> dict[tuple[str, str], str]:
    """The health table's line per (source, stream)."""
    rows = re.findall(r'<tr class="(?:un)?healthy">\s*<td>([^<]*)</td><td>([^<]*)</td>.*?<td class="line">([^<]*)</td>',
                      page, flags=re.S)
    return {(html.unescape(a), html.unescape(b)): AGO.sub("", html.unescape(line)) for a, b, line in rows}


def status_lines_of(url: str) -> dict[tuple[str, str], str]:
    """What ``ordersync status`` says of each stream of the destination (no configuration: each API's zone)."""
    store = open_store(url, read_only=True)
    try:
        shown = status.report(store.stream_records(), {}, store.describe())
    finally:
        store.close()
    return {(src.source, s.stream): AGO.sub("", s.line) for src in shown.sources for s in src.streams}


def test_every_page_answers_on_every_destination(synced: Synced) -> None:
    app = create_app(synced.url)
    home = get(app, "/")
    assert home.status_code == 200, home.text[-2000:]
    assert "HTTP 500 from /v2/orders" in home.text and "second line" not in home.text
    assert status_lines(home.text) == status_lines_of(synced.url)  # the words of 'ordersync status', each stream
    for (source, currency), minor in synced.revenue.items():  # the totals table, each in the currency's units
        assert money(minor, currency) in home.text, (source, currency)
    for path in ("/?from=2026-01-01&to=2026-02-01", "/runs", "/static/style.css", "/orders?from=yesterday"):
        assert get(app, path).status_code == 200, path
    for api in SYNCED_APIS:
        listed = get(app, f"/orders?source={api}")
        assert listed.status_code == 200 and f'href="/orders/{api}/' in listed.text, api
    first = get(app, "/orders")
    assert first.status_code == 200 and first.text.count('href="/orders/') >= PAGE_SIZE
    next_url = re.search(r'id="next" href="([^"]+)"', first.text)
    assert next_url, "a second page of orders"
    second = get(app, html.unescape(next_url.group(1)))
    assert second.status_code == 200 and 'id="prev"' in second.text
    prev_url = re.search(r'id="prev" href="([^"]+)"', second.text)
    assert prev_url and get(app, html.unescape(prev_url.group(1))).status_code == 200
    detail = get(app, f"/orders/{synced.source}/{synced.changed}")
    assert detail.status_code == 200 and "version" in detail.text.lower()
    assert get(app, f"/orders/{synced.source}/no-such-order").status_code == 404
    source, order_id, email, status = synced.found
    for query in (f"q={email.split('@')[0]}@", f"q={email}", f"q={order_id}&status={status}&source={source}"):
        listed = get(app, f"/orders?{query.replace('@', '%40')}")
        assert listed.status_code == 200 and f"/orders/{source}/{order_id}" in listed.text, query


def test_the_engine_refuses_to_write_on_every_destination(synced: Synced) -> None:
    engine = open_readonly(synced.url)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="(?i)read-?only|query_only"):
            conn.execute(orders.delete())
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == synced.count
    finally:
        engine.dispose()
