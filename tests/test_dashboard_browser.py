"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright opens every page
against a demo database and checks what it shows against SQL, the search, the paging, and that no request leaves
127.0.0.1. Screenshots go to build/screenshots/ (or $ORDERSYNC_SCREENSHOTS). One browser for the whole module."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from ordersync.dashboard import create_app
from ordersync.demo import run_demo
from ordersync.progress import Silent
from ordersync.sandbox.runner import RunningServer, start_in_thread

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
    assert page.locator("#orders-chart svg polyline").count() == len({r[0] for r in cells(page, "#totals")})
    assert page.locator(".revenue-chart").count() >= 3  # NOK, CHF, USD, EUR in the demo

    page.fill("input[name=from]", "2020-01-01")  # a wider range through the form
    page.click("form.filters button")
    page.wait_for_load_state()
    assert page.input_value("input[name=from]") == str(date.fromisoformat(last) - timedelta(days=91))  # 92 days
    _check_totals(browser, page, page.input_value("input[name=from]"), page.input_value("input[name=to]"))


def _check_totals(browser: Browser, page: Page, first: str, last: str) -> None:
    shown = {(r[0], r[1]): (int(r[2].replace(",", "")), money(r[3])) for r in cells(page, "#totals")}
    expected = {(s, c): (n, int(rev)) for s, c, n, rev in browser.sql(
        "SELECT source, currency, count(*), sum(CASE WHEN is_paid THEN total_minor ELSE 0 END) FROM orders "
        "WHERE substr(created_at, 1, 10) BETWEEN ? AND ? GROUP BY source, currency", first, last)}
    assert shown == expected and expected


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
