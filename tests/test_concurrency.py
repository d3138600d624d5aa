"""Read-ahead where each API allows it (e-guma's date windows, Prio's creation ranges, Firespring's counted pages):
the same rows as reading one request at a time, checkpoints in order, and a run that fails half way resumes
exactly where its last stored page ended."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordersync.apis.eguma import localtime
from ordersync.store import Store
from tests.support import InProcess, in_process, rows

TABLES = {
    "orders": "order_id, api, order_number, status, currency, total_minor, discount_minor, tax_minor, is_paid, "
              "customer_id, customer_name, customer_email, created_at, updated_at, raw",
    "order_lines": "order_id, line_no, line_id, product_id, name, quantity, unit_price_minor, total_minor, raw",
    "payments": "order_id, payment_no, method, amount_minor, currency, raw",
    "customers": "customer_id, name, email, phone, company, country, created_at, updated_at, raw",
}


class Overlap(httpx.AsyncBaseTransport):
    """The in-process sandbox, counting how many requests were in flight at once and every query sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0
        self.sent: list[httpx.QueryParams] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        self.now += 1
        self.most = max(self.most, self.now)
        self.sent.append(request.url.params)
        try:
            await asyncio.sleep(0)  # let the other requests already asked start before this one is answered
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1


def content(store: Store, source: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows(store, f"SELECT {columns} FROM {table} WHERE source = ? ORDER BY 1, 2", source)
            for table, columns in TABLES.items()}


def cursor(store: Store, source: str) -> Any:
    import json

    state = json.loads(rows(store, "SELECT state FROM _ordersync_state WHERE source = ?", source)[0][0])
    return state.get("cursor"), state.get("run")


def fail_writes_after(monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
    """The destination fails on the write after ``pages`` pages (a disk unplugged, a killed process)."""
    original = Store.write_page
    calls = {"n": 0}

    def write_page(self: Store, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > pages:
            raise OSError("disk unplugged")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "write_page", write_page)


def check_parallel_equals_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: InProcess,
                                     settings: dict[str, Any], resume_point: Callable[[dict[str, Any]], str | None],
                                     sent_from: Callable[[httpx.QueryParams], Any]) -> None:
    store = Store(f"sqlite:///{tmp_path / 'o.db'}")
    sequential = Overlap(sandbox.transport())
    [one] = sandbox.sync(store, "one", {**settings, "concurrency": 1}, transport=sequential)
    assert one.ok, one.error
    assert sequential.most == 1
    parallel = Overlap(sandbox.transport())
    [four] = sandbox.sync(store, "four", {**settings, "concurrency": 4}, transport=parallel)
    assert four.ok, four.error
    assert parallel.most > 1  # several windows / ranges were really read at once
    expected = content(store, "one")
    assert expected["orders"] and content(store, "four") == expected
    assert cursor(store, "four")[0] == cursor(store, "one")[0]

    # a run that fails half way keeps every page before the failure, and the next run resumes exactly there
    with monkeypatch.context() as patch:
        fail_writes_after(patch, 3)
        [broken] = sandbox.sync(store, "crash", {**settings, "concurrency": 4}, transport=Overlap(sandbox.transport()))
    assert not broken.ok and "disk unplugged" in (broken.error or "")
    _, run = cursor(store, "crash")
    assert run is not None and run["position"]
    again = Overlap(sandbox.transport())
    [resumed] = sandbox.sync(store, "crash", {**settings, "concurrency": 4}, transport=again)
    assert resumed.ok, resumed.error
    # the resumed pass goes on where the failed run stopped (then the run reads its own incremental passes)
    first = min(s for s in (sent_from(q) for q in parallel.sent) if s is not None)
    went_on = next((s for s in (sent_from(q) for q in again.sent) if s is not None), None)  # (after a token)
    assert went_on is not None and went_on > first  # not read from the start
    resume = resume_point(run["position"])
    if resume is not None:
        assert went_on == resume  # nothing before the resume point is read again
    assert content(store, "crash") == expected
    store.close()


def test_eguma_windows_read_in_parallel_give_the_same_rows_and_resume_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    moment = datetime.fromisoformat("2026-06-20T00:00:00+00:00")
    monkeypatch.setattr(localtime, "utc_now", lambda: moment)
    with in_process("eguma", orders=400, seed=3) as eg:
        settings = eg.settings(window_days=90, split_threshold=40)
        check_parallel_equals_sequential(
            tmp_path, monkeypatch, eg, settings, resume_point=lambda position: position["after"],
            sent_from=lambda q: q.get("updated_at_after"))


def test_prio_ranges_read_in_parallel_give_the_same_rows_and_resume_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with in_process("prio", orders=400, seed=3) as prio:
        settings = prio.settings(window_days=90, items_per_page=20)
        check_parallel_equals_sequential(
            tmp_path, monkeypatch, prio, settings, resume_point=lambda position: None,
            sent_from=lambda q: q.get("order_created_from"))


def test_firespring_pages_read_in_parallel_give_the_same_rows_and_resume_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with in_process("firespring", orders=300, seed=3) as fs:
        settings = fs.settings(count=20)
        check_parallel_equals_sequential(
            tmp_path, monkeypatch, fs, settings, resume_point=lambda position: position["page"],
            sent_from=lambda q: int(q["page"]) if "page" in q else None)


class Timeline(Overlap):
    """:class:`Overlap` that also logs when each request left and when its answer was handed back."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner)
        self.events: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        self.events.append(("sent", request.url.params.get("page", "")))
        for _ in range(20):  # an answer takes a while: a client reading ahead has its next requests out meanwhile
            await asyncio.sleep(0)
        response = await super().handle_async_request(request)
        self.events.append(("answered", request.url.params.get("page", "")))
        return response


@pytest.mark.parametrize(("api", "own"), [
    ("firespring", {"count": 20}),
    ("frontcore", {"limit": 20, "streams": ["orders"], "requests_per_second": None}),
])
def test_a_first_run_asks_its_first_pages_at_once_and_an_incremental_run_page_one_alone(
        tmp_path: Path, api: str, own: dict[str, Any]) -> None:
    """A first run reads a whole history, rarely one page: waiting for page 1 before asking page 2 would cost a
    whole round trip. An incremental run is often one page: it asks page 1 alone, and more once it says so."""
    store = Store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process(api, orders=300, seed=3) as sandbox:
        settings = {**sandbox.settings(**own), "concurrency": 4}
        first = Timeline(sandbox.transport())
        [run] = sandbox.sync(store, "s", settings, transport=first)
        assert run.ok, run.error
        before_any_answer = first.events[:first.events.index(("answered", "1"))]
        assert before_any_answer == [("sent", str(page)) for page in range(1, 5)]
        assert first.most == 4
        incremental = Timeline(sandbox.transport())
        [again] = sandbox.sync(store, "s", settings, transport=incremental)
        assert again.ok, again.error
        assert incremental.events[:2] == [("sent", "1"), ("answered", "1")]
    store.close()


def test_prio_asks_every_range_first_page_at_once_before_its_first_answer(tmp_path: Path) -> None:
    """Every creation range's first page is needed in any pass: they are asked together with the first."""
    store = Store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process("prio", orders=400, seed=3) as prio:
        timeline = Timeline(prio.transport())
        [run] = prio.sync(store, "p", {**prio.settings(window_days=90, items_per_page=20), "concurrency": 4},
                          transport=timeline)
        assert run.ok, run.error
        first_answer = timeline.events.index(("answered", "1"), 2)  # after the token's request and answer
        assert [kind for kind, _ in timeline.events[2:first_answer]] == ["sent"] * 4
        ranges = {params.get("order_created_from") for params in timeline.sent[1:5]}
        assert len(ranges) == 4 and timeline.most == 4
    store.close()
