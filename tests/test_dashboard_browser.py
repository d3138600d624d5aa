"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright opens every page
against a demo database and checks what it shows against SQL, the search, the paging, and that no request leaves
127.0.0.1. Screenshots go to build/screenshots/ (or $ORDERSYNC_SCREENSHOTS). One browser for the whole module."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from ordersync.dashboard import create_app
from ordersync.demo import run_demo
from ordersync.demo import summary as summary_of
from ordersync.progress import Silent
from ordersync.revenue import major
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import open_store

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("ORDERSYNC_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "build" / "screenshots")


@dataclass
class Browser:
    base: str
    db: Path
    page: Page
    requests: list[str] = field(default_factory=list)

    def open(self, path: str, shot: str | None = None) -> Page:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, path
        if shot:
            self.screenshot(shot)
        return self.page

    def screenshot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "demo.db"
    store, results, _ = run_demo(db, 150, 7, Silent())
    store.close()
    assert all(r.ok for r in results)
    server: RunningServer = start_in_thread(create_app(f"sqlite:///{db}"))
    with sync_playwright() as playwright:
        context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(folder / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            b = Browser(server.base_url, db, context.pages[0] if context.pages else context.new_page())
            context.on("request", lambda request: b.requests.append(request.url))
            yield b
        finally:
            context.close()
            server.stop()


def cells(page: Page, selector: str) -> list[list[str]]:
    return [[c.strip() for c in row] for row in page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText))")]


def money(text: str) -> int:
    return round(float(text.replace(",", "")) * 100)


def test_status_page_shows_every_stream_and_the_numbers_of_the_chart_match_sql(browser: Browser) -> None:
    page = browser.open("/", shot="status")
    streams = {(row[0], row[1]): row for row in cells(page, "#streams")}
    expected = browser.sql("SELECT r.source, r.stream, r.status, r.new_rows, r.changed_rows FROM _ordersync_runs r "
                           "WHERE r.run_id IN (SELECT max(run_id) FROM _ordersync_runs GROUP BY source, stream)")
    assert len(streams) == len(expected) >= 5
    for source, stream, status, new, changed in expected:
        row = streams[(source, stream)]
        assert row[3] == status and row[4] == f"{new:,}" and row[5] == f"{changed:,}"
    first, last = page.input_value("input[name=from]"), page.input_value("input[name=to]")
    assert (date.fromisoformat(last) - date.fromisoformat(first)).days == 89
    _check_totals(browser, page, first, last)
    sources = {r[0] for r in cells(page, "#totals")}  # a stack per source, and the cancelled ones apart
    assert page.locator("#orders-chart svg g.series").count() == len(sources) + 1
    assert page.locator("#orders-chart svg g.series.cancelled").get_attribute("data-name") == "cancelled"
    assert page.locator(".revenue-chart").count() >= 3  # NOK, CHF, USD, EUR in the demo

    page.fill("input[name=from]", "2020-01-01")  # a wider range through the form
    page.click("form.filters button")
    page.wait_for_load_state()
    assert page.input_value("input[name=from]") == str(date.fromisoformat(last) - timedelta(days=91))  # 92 days
    _check_totals(browser, page, page.input_value("input[name=from]"), page.input_value("input[name=to]"))


SOLD = "(lifecycle = 'paid' OR (lifecycle = 'partially_cancelled' AND is_paid))"  # revenue: docs/report.md


def _check_totals(browser: Browser, page: Page, first: str, last: str) -> None:
    """The totals table against SQL: orders by lifecycle, and revenue (sold orders only)."""
    shown = {(r[0], r[1]): (*(int(n.replace(",", "")) for n in r[2:7]), money(r[7])) for r in cells(page, "#totals")}
    expected = {(s, c): (n, pending, paid, part, cancelled, int(rev)) for s, c, n, pending, paid, part, cancelled,
                rev in browser.sql(
        "SELECT source, currency, count(*), sum(lifecycle = 'pending'), sum(lifecycle = 'paid'), "
        "sum(lifecycle = 'partially_cancelled'), sum(lifecycle = 'cancelled'), "
        f"sum(CASE WHEN {SOLD} THEN total_minor ELSE 0 END) "
        "FROM orders o WHERE substr(created_at, 1, 10) BETWEEN ? AND ? GROUP BY source, currency", first, last)}
    assert shown == expected and expected
    assert sum(n[4] for n in expected.values()) > 0  # cancelled orders in the range, shown apart


def test_orders_are_paged_newest_first_and_every_order_appears_once(browser: Browser) -> None:
    page = browser.open("/orders", shot="orders")
    seen: list[str] = []
    first_page = None
    while True:
        links = page.eval_on_selector_all("#orders tbody a", "links => links.map(a => a.getAttribute('href'))")
        first_page = first_page or links
        seen += links
        if page.locator("#next").count() == 0:
            break
        page.click("#next")
        page.wait_for_load_state()
        assert page.locator("#prev").count() == 1
    total = browser.sql("SELECT count(*) FROM orders WHERE created_at IS NOT NULL")[0][0]
    assert len(seen) == len(set(seen)) == total > 50
    page.click("#prev")
    page.wait_for_load_state()
    page.go_back()
    page.go_back()
    page.wait_for_load_state()
    newest = browser.sql("SELECT source, order_id FROM orders WHERE created_at IS NOT NULL "
                         "ORDER BY created_at DESC, source DESC, order_id DESC LIMIT 50")
    assert [link.split("/")[2:] for link in first_page] == [[s, o] for s, o in newest]


def test_search_by_email_number_source_and_status(browser: Browser) -> None:
    email, number = browser.sql("SELECT customer_email, order_number FROM orders WHERE customer_email LIKE '%@%' "
                                "AND order_number IS NOT NULL AND created_at IS NOT NULL LIMIT 1")[0]
    page = browser.open("/orders")
    page.fill("input[name=q]", email)
    page.click("#search button")
    page.wait_for_load_state()
    rows = cells(page, "#orders")
    expected = browser.sql("SELECT count(*) FROM orders WHERE customer_email = ? AND created_at IS NOT NULL", email)
    assert len(rows) == min(50, expected[0][0]) and all(r[6] == email for r in rows)
    browser.screenshot("search")

    page.fill("input[name=q]", number)
    page.click("#search button")
    page.wait_for_load_state()
    rows = cells(page, "#orders")
    assert rows and all(r[1] == number for r in rows)

    source, status, count = browser.sql("SELECT source, status, count(*) FROM orders WHERE status IS NOT NULL "
                                        "AND created_at IS NOT NULL GROUP BY 1, 2 ORDER BY 3 LIMIT 1")[0]
    page = browser.open("/orders")
    page.select_option("select[name=source]", source)
    page.select_option("select[name=status]", status)
    page.click("#search button")
    page.wait_for_load_state()
    rows = cells(page, "#orders")
    assert len(rows) == min(count, 50) and all(r[0] == source and r[3] == status for r in rows)


def test_order_page_shows_lines_payments_highlighted_history_and_raw(browser: Browser) -> None:
    source, order_id = browser.sql("SELECT source, order_id FROM order_versions WHERE version_no = 2 "
                                   "ORDER BY source LIMIT 1")[0]
    page = browser.open("/orders")
    page.goto(f"{browser.base}/orders/{source}/{order_id}")
    browser.screenshot("order")
    versions = cells(page, "#versions")
    assert [v[0] for v in versions] == ["1", "2"] and versions[1][2] == "current"
    assert page.locator("#versions td.changed").count() + page.locator("#versions td.changes li").count() >= 1
    changes = browser.sql("SELECT v1.status, v2.status, v1.total_minor, v2.total_minor, v1.is_paid, v2.is_paid "
                          "FROM order_versions v1 JOIN order_versions v2 USING (source, order_id) "
                          "WHERE v1.version_no = 1 AND v2.version_no = 2 AND source = ? AND order_id = ?",
                          source, order_id)[0]
    if changes[0] != changes[1]:
        assert page.locator("#versions tbody tr").nth(1).locator("td.changed").first.inner_text() == changes[1]
    lines = browser.sql("SELECT count(*) FROM order_lines WHERE source = ? AND order_id = ?", source, order_id)[0][0]
    pays = browser.sql("SELECT count(*) FROM payments WHERE source = ? AND order_id = ?", source, order_id)[0][0]
    assert len(cells(page, "#lines")) == max(lines, 1) and len(cells(page, "#payments")) == max(pays, 1)
    raw = browser.sql("SELECT raw FROM orders WHERE source = ? AND order_id = ?", source, order_id)[0][0]
    assert json.loads(page.inner_text("#raw")) == json.loads(raw)
    total = browser.sql("SELECT total_minor FROM orders WHERE source = ? AND order_id = ?", source, order_id)[0][0]
    assert money(page.inner_text("#order .total").split()[0]) == total

    page.goto(f"{browser.base}/orders/{source}/no-such-order")
    assert "No such order" in page.content()


def test_run_history_page_charts_every_run(browser: Browser) -> None:
    page = browser.open("/runs", shot="runs")
    runs = browser.sql("SELECT run_id, source, stream, new_rows, changed_rows FROM _ordersync_runs "
                       "ORDER BY run_id DESC")
    shown = cells(page, "#runs")
    assert [(int(r[0]), r[1], r[2], r[6], r[7]) for r in shown] == [
        (run_id, s, st, f"{n:,}", f"{c:,}") for run_id, s, st, n, c in runs]
    assert page.locator("#duration-chart svg rect").count() == len(runs)
    assert page.locator("#rows-chart svg rect").count() == len(runs)


def test_no_request_left_127_0_0_1_and_screenshots_were_written(browser: Browser) -> None:
    browser.open("/")
    browser.open("/runs")
    hosts = {urlparse(url).hostname for url in browser.requests if not url.startswith(("data:", "about:"))}
    assert hosts == {"127.0.0.1"}
    assert any("/static/style.css" in url for url in browser.requests)
    assert all((SHOTS / f"{name}.png").stat().st_size > 10_000 for name in ("status", "orders", "runs"))


# --- issue 27 part 6: stacked bars, round ticks, search, lifecycle, CSV, dates; and the figures agree ---------
def test_bars_stack_per_source_in_one_colour_each_on_round_ticks(browser: Browser) -> None:
    page = browser.open("/")
    first, last = page.input_value("input[name=from]"), page.input_value("input[name=to]")
    colours: dict[str, str] = {}
    for group in page.locator("svg g.series").all():  # the orders chart and every currency's revenue chart
        name, fill = group.get_attribute("data-name") or "", group.get_attribute("fill") or ""
        assert colours.setdefault(name, fill) == fill, name
    assert len(set(colours.values())) == len(colours) >= 5  # four sources and the cancelled ones
    counts = page.locator("#orders-chart text.tick").all_text_contents()
    assert counts[0] == "0" and len(counts) >= 2
    assert all(re.fullmatch(r"[1-9]\d{0,2}(,\d{3})*", t) for t in counts[1:]), counts  # whole numbers
    for chart in page.locator(".revenue-chart").all():
        ticks = [_tick(t) for t in chart.locator("text.tick").all_text_contents()]
        step = ticks[1]
        assert ticks == [step * n for n in range(len(ticks))] and step.normalize().as_tuple().digits in (
            (1,), (2,), (2, 5), (5,)), ticks  # 1, 2, 2.5 or 5 times a power of ten
    stacked = _tips(page, "#orders-chart g.series")
    for source, count in browser.sql("SELECT source, sum(lifecycle IS NOT 'cancelled') FROM orders "
                                     "WHERE substr(created_at, 1, 10) BETWEEN ? AND ? GROUP BY source", first, last):
        assert stacked[source] == count, source
    cancelled = browser.sql("SELECT count(*) FROM orders WHERE lifecycle = 'cancelled' AND substr(created_at, 1, 10) "
                            "BETWEEN ? AND ?", first, last)[0][0]
    assert stacked["cancelled"] == cancelled > 0
    earlier = browser.open("/?from=2025-01-01&to=2025-02-15")  # another range: the same colours
    assert {g.get_attribute("data-name"): g.get_attribute("fill") for g in earlier.locator("svg g.series").all()
            }.items() <= colours.items()


def _tick(text: str) -> Decimal:
    unit = {"k": 1000, "M": 1_000_000}.get(text[-1], 1)
    return Decimal(text.rstrip("kM").replace(",", "")) * unit


def _tips(page: Page, selector: str) -> dict[str, int]:
    """Per series, the sum of its bars' tooltips (``frontcore 2026-11-03: 4 orders``)."""
    found: dict[str, int] = {}
    for group in page.locator(selector).all():
        tips = group.locator("rect title").all_text_contents()
        found[group.get_attribute("data-name") or ""] = sum(int(t.rsplit(": ", 1)[1].split()[0]) for t in tips)
    return found


def test_search_finds_a_part_of_a_name_or_e_mail_in_any_case(browser: Browser) -> None:
    name = browser.sql("SELECT customer_name FROM orders WHERE customer_name GLOB '[A-Z][a-z]* [A-Z][a-z][a-z]*' "
                       "AND created_at IS NOT NULL ORDER BY created_at DESC LIMIT 1")[0][0]
    part = name.split()[1][1:4].upper()  # the middle of a last name, in capitals
    page = browser.open("/orders")
    page.fill("input[name=q]", part)
    page.click("#search button")
    page.wait_for_load_state()
    rows = cells(page, "#orders")
    found = browser.sql("SELECT count(*) FROM orders WHERE created_at IS NOT NULL AND (customer_name LIKE ?1 OR "
                        "customer_email LIKE ?1 OR order_number LIKE ?1)", f"%{part}%")[0][0]
    assert len(rows) == min(found, 50) and len(rows) > 1
    assert all(part.lower() in f"{r[1]} {r[5]} {r[6]}".lower() for r in rows)
    assert name in {r[5] for r in rows} or found > 50


def test_a_lifecycle_filter_and_its_whole_list_as_csv(browser: Browser, tmp_path: Path) -> None:
    page = browser.open("/orders")
    page.select_option("select[name=lifecycle]", "paid")
    page.click("#search button")
    page.wait_for_load_state()
    rows = cells(page, "#orders")
    assert len(rows) == 50 and all(r[9] == "paid" for r in rows)
    browser.screenshot("orders-paid")
    with page.expect_download() as download:
        page.click("#csv")
    saved = tmp_path / "orders.csv"
    download.value.save_as(saved)
    listed = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    expected = browser.sql("SELECT source, order_id, currency, total_minor FROM orders WHERE lifecycle = 'paid' AND "
                           "created_at IS NOT NULL ORDER BY created_at DESC, source DESC, order_id DESC")
    assert len(listed) == len(expected) > 50  # every order the filter finds, not the page shown
    assert [(r["source"], r["order_id"], r["currency"]) for r in listed] == [e[:3] for e in expected]
    assert all(Decimal(r["total"]) == Decimal(e[3]).scaleb(-2) for r, e in zip(listed, expected, strict=True))
    assert {r["lifecycle"] for r in listed} == {"paid"}


def test_an_invalid_date_says_so(browser: Browser) -> None:
    page = browser.open("/?from=2026-02-30&to=2026-11-30")
    assert "'2026-02-30' is not a date: use YYYY-MM-DD" in page.inner_text("p.error")
    page = browser.open("/orders?to=31.12.2026")
    assert "'31.12.2026' is not a date: use YYYY-MM-DD" in page.inner_text("p.error")
    refused = page.request.get(f"{browser.base}/orders.csv?from=yesterday")
    assert refused.status == 400 and "'yesterday' is not a date" in refused.text()


def report(db: Path, *args: str) -> dict[tuple[str, str], dict[str, str]]:
    """``ordersync report`` as a user runs it, its CSV by source and currency."""
    done = subprocess.run([sys.executable, "-m", "ordersync", "report", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {(r["source"], r["currency"]): r for r in csv.DictReader(io.StringIO(done.stdout))}


def test_the_demo_summary_the_dashboard_and_the_report_agree_to_the_cent(browser: Browser) -> None:
    store = open_store(f"sqlite:///{browser.db}", read_only=True)
    try:
        summary = summary_of(store)  # what 'ordersync demo' prints: every order
    finally:
        store.close()
    everything = report(browser.db, "--since", "1900-01-01")
    assert {(f.source, f.currency): (str(f.orders), str(f.cancelled), major(f.net_minor, f.currency),
                                     major(f.refunds_minor, f.currency)) for f in summary} == {
        key: (r["orders"], r["cancelled"], Decimal(r["net_revenue"]), Decimal(r["refunds"]))
        for key, r in everything.items()} and len(summary) == 4

    page = browser.open("/")  # the dashboard's range, and the report of the same days
    first, last = page.input_value("input[name=from]"), page.input_value("input[name=to]")
    ranged = report(browser.db, "--since", first, "--until", str(date.fromisoformat(last) + timedelta(days=1)))
    shown = {(r[0], r[1]): r[2:] for r in cells(page, "#totals")}
    assert shown == {key: [f"{int(r[k]):,}" for k in ("orders", "pending", "paid", "partially_cancelled",
                                                        "cancelled")] + [f"{Decimal(r['net_revenue']):,}"]
                     for key, r in ranged.items()}
