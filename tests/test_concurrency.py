"""Slices read concurrently (e-guma's date windows, Prio's creation slices, Firespring's creation days): the same
rows as reading one slice at a time, and a run that fails half way keeps its complete slices (``run.done``) and
resumes by reading only the others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordersync.apis.eguma import localtime
from ordersync.store import Store, open_store
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


Bounds = Callable[[httpx.QueryParams], tuple[float, float] | None]
"""A request's stretch ``[lo, hi)`` on its API's slice axis (None: not a list request)."""


class Resumed(Overlap):
    """:class:`Overlap` that tells the requests of the resumed pass from those of the passes the run plans after it
    (``_finish_pass`` ends the resumed pass)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, monkeypatch: pytest.MonkeyPatch) -> None:
        from ordersync.paging import engine

        super().__init__(inner)
        self.passes_ended = 0
        self.resumed_pass: list[httpx.QueryParams] = []
        finish = engine._finish_pass

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.passes_ended += 1
            return finish(*args, **kwargs)

        monkeypatch.setattr(engine, "_finish_pass", counting)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.passes_ended == 0:
            self.resumed_pass.append(request.url.params)
        return await super().handle_async_request(request)


DESTINATIONS = ["sqlite", "duckdb"]
"""The file destinations the resume tests run on: SQLite writes a page per transaction in its writer process,
DuckDB in a thread of the sync, with its own statements (ordersync.store.duckdb_pages)."""


def check_parallel_equals_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: InProcess,
                                     settings: dict[str, Any], bounds: Bounds, fail_after: int = 3,
                                     destination: str = "sqlite") -> None:
    store = open_store(f"{destination}:///{tmp_path / 'o.db'}")
    sequential = Overlap(sandbox.transport())
    [one] = sandbox.sync(store, "one", {**settings, "concurrency": 1}, transport=sequential)
    assert one.ok, one.error
    assert sequential.most == 1
    parallel = Overlap(sandbox.transport())
    [four] = sandbox.sync(store, "four", {**settings, "concurrency": 4}, transport=parallel)
    assert four.ok, four.error
    assert parallel.most > 1  # several slices were really read at once
    expected = content(store, "one")
    assert expected["orders"] and content(store, "four") == expected
    assert cursor(store, "four")[0] == cursor(store, "one")[0]

    # a run that fails half way keeps its complete slices, and the next run reads only the others
    with monkeypatch.context() as patch:
        fail_writes_after(patch, fail_after)
        [broken] = sandbox.sync(store, "crash", {**settings, "concurrency": 4}, transport=Overlap(sandbox.transport()))
    assert not broken.ok and "disk unplugged" in (broken.error or "")
    _, run = cursor(store, "crash")
    assert run is not None and run["done"] and all(lo < hi for lo, hi in run["done"])
    done = [tuple(span) for span in run["done"]]
    assert done == sorted(done) and all(a[1] < b[0] for a, b in zip(done, done[1:], strict=False))  # merged
    with monkeypatch.context() as patch:
        again = Resumed(sandbox.transport(), patch)
        [resumed] = sandbox.sync(store, "crash", {**settings, "concurrency": 4}, transport=again)
    assert resumed.ok, resumed.error
    asked = [b for b in map(bounds, again.resumed_pass) if b is not None]
    assert asked, "the resumed pass read the slices not complete"
    overlapping = [(q, d) for q in asked for d in done if q[0] < d[1] and d[0] < q[1]]
    assert not overlapping, overlapping  # no complete slice is asked again
    assert content(store, "crash") == expected
    store.close()


def eguma_bounds(q: httpx.QueryParams) -> tuple[float, float] | None:
    from datetime import datetime

    from ordersync.apis.eguma.client import seconds

    if "updated_at_after" not in q:
        return None
    return tuple(seconds(datetime.strptime(q[k], localtime.FORMAT))  # type: ignore[return-value]
                 for k in ("updated_at_after", "updated_at_before"))


def prio_bounds(q: httpx.QueryParams) -> tuple[float, float] | None:
    from datetime import datetime

    from ordersync.apis.prio.client import millis

    if "order_created_from" not in q:
        return None
    lo, hi = (millis(datetime.fromisoformat(q[k])) for k in ("order_created_from", "order_created_to"))
    return lo, hi + 1  # the upper bound is inclusive, to the millisecond


def firespring_bounds(q: httpx.QueryParams) -> tuple[float, float] | None:
    from datetime import date

    if "date_end" not in q:
        return None
    lo = date.fromisoformat(q["date_start"]).toordinal() if "date_start" in q else float("-inf")
    return lo, date.fromisoformat(q["date_end"]).toordinal()


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_eguma_windows_read_in_parallel_give_the_same_rows_and_resume_by_slice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str) -> None:
    from datetime import datetime

    moment = datetime.fromisoformat("2026-06-20T00:00:00+00:00")
    monkeypatch.setattr(localtime, "utc_now", lambda: moment)
    with in_process("eguma", orders=400, seed=3) as eg:
        settings = eg.settings(window_days=90, split_threshold=40)
        # a window of more than 20 orders is stored in parts: fail once a few windows are complete
        check_parallel_equals_sequential(tmp_path, monkeypatch, eg, settings, eguma_bounds, fail_after=8,
                                         destination=destination)


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_prio_slices_read_in_parallel_give_the_same_rows_and_resume_by_slice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str) -> None:
    with in_process("prio", orders=400, seed=3) as prio:
        settings = prio.settings(window_days=90, items_per_page=20)
        check_parallel_equals_sequential(tmp_path, monkeypatch, prio, settings, prio_bounds,
                                         destination=destination)


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_firespring_days_read_in_parallel_give_the_same_rows_and_resume_by_slice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str) -> None:
    with in_process("firespring", orders=300, seed=3) as fs:
        settings = fs.settings(count=20)
        check_parallel_equals_sequential(tmp_path, monkeypatch, fs, settings, firespring_bounds,
                                         destination=destination)


class Timeline(Overlap):
    """:class:`Overlap` that also logs when each request left and when its answer was handed back (by its query)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner)
        self.events: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        label = str(request.url.params)
        self.events.append(("sent", label))
        for _ in range(20):  # an answer takes a while: other slices' requests are out meanwhile
            await asyncio.sleep(0)
        response = await super().handle_async_request(request)
        self.events.append(("answered", label))
        return response

    def lists(self, path_end: str) -> list[tuple[str, str]]:
        return [(kind, label) for kind, label in self.events if "apikey" in label or path_end in label
                or "page" in label]


@pytest.mark.parametrize(("api", "own"), [
    ("firespring", {"count": 20}),
    ("frontcore", {"limit": 20, "streams": ["orders"], "requests_per_second": None}),
])
def test_a_first_run_reads_one_slice_alone_then_concurrency_slices_at_once_and_an_incremental_run_little(
        tmp_path: Path, api: str, own: dict[str, Any]) -> None:
    """A first run's first answer shows how dense the history is: it is asked alone, then ``concurrency`` slices
    are in flight at once, never two pages of one slice. An incremental run usually fits in one answer per pass:
    its first request is asked alone, and it costs a few requests."""
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process(api, orders=300, seed=3) as sandbox:
        settings = {**sandbox.settings(**own), "concurrency": 4}
        first = Timeline(sandbox.transport())
        [run] = sandbox.sync(store, "s", settings, transport=first)
        assert run.ok, run.error
        assert first.events[0][0] == "sent" and first.events[1] == ("answered", first.events[0][1])
        assert first.most == 4
        incremental = Timeline(sandbox.transport())
        [again] = sandbox.sync(store, "s", settings, transport=incremental)
        assert again.ok, again.error
        assert incremental.events[1] == ("answered", incremental.events[0][1])
        assert len(incremental.sent) <= 6, [str(q) for q in incremental.sent]
    store.close()


def test_prio_reads_its_first_slice_alone_then_slices_at_once_that_never_cross_a_window(tmp_path: Path) -> None:
    """The first answer sizes the slices; then ``concurrency`` of them are read at once, each inside one creation
    window of ``window_days``."""
    from datetime import datetime, timedelta

    from ordersync.apis.prio.client import windows
    from ordersync.config import parse_source

    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    with in_process("prio", orders=400, seed=3) as prio:
        timeline = Timeline(prio.transport())
        [run] = prio.sync(store, "p", {**prio.settings(window_days=90, items_per_page=20), "concurrency": 4},
                          transport=timeline)
        assert run.ok, run.error
        listed = [q for q in timeline.sent if "order_created_from" in q]
        assert timeline.events[2:4] == [("sent", str(listed[0])), ("answered", str(listed[0]))]  # after the token
        assert timeline.most == 4
        asked = [(datetime.fromisoformat(q["order_created_from"]), datetime.fromisoformat(q["order_created_to"]))
                 for q in listed]
        start = parse_source("p", prio.settings(window_days=90)).created_from()  # type: ignore[attr-defined]
        ranges = windows(start, max(hi for _, hi in asked) + timedelta(days=1), 90)
        # a stretch read whole is cut at the windows too: a window's Last-Modified (and a 304) covers it alone
        assert all(any(w_lo <= lo and hi <= w_hi for w_lo, w_hi in ranges) for lo, hi in asked)
    store.close()
