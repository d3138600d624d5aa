"""The contract between the engine, the store and an API: the exactly-once rules, typed state, stop, layering.

Every test here runs in-process (the sandbox through ``httpx.ASGITransport``, or a ``MockTransport``): no socket.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ordersync import status
from ordersync.config import parse_source
from ordersync.cursor import next_cursor
from ordersync.errors import ConfigError
from ordersync.model import Rows
from ordersync.store import Store, open_store
from ordersync.sync import sync_all, sync_source
from tests.support import InProcess, StopAfterPages, in_process, rows

KEY = "contract-key-123"


def order_ids(store: Store, source: str = "c") -> set[str]:
    return {r[0] for r in rows(store, "select order_id from orders where source = ?", source)}


def state_of(store: Store, stream: str = "orders") -> dict[str, Any]:
    [(raw,)] = rows(store, "select state from _ordersync_state where stream = ?", stream)
    return dict(json.loads(raw))


# --- layering --------------------------------------------------------------------------------------------------
def test_the_sync_path_loads_no_sandbox_starlette_faker_or_pyarrow() -> None:
    code = (
        "import sys, ordersync.sync, ordersync.config, ordersync.cli, ordersync.status\n"
        "from ordersync import apis\n"
        "for spec in apis.registry().values(): spec.client, spec.settings\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'faker', 'pyarrow', 'uvicorn')\n"
        "             or m.startswith('ordersync.sandbox') or m.rsplit('.', 1)[-1] in ('sandbox', 'fake'))\n"
        "print(','.join(bad))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


# --- the cursor rule -------------------------------------------------------------------------------------------
def test_next_cursor_never_passes_the_pass_start_and_never_goes_back() -> None:
    t = datetime(2026, 6, 1, tzinfo=UTC)
    assert next_cursor(None, t + timedelta(hours=2), t) == t  # a row changed while paging is read again next time
    assert next_cursor(None, t - timedelta(hours=2), t) == t - timedelta(hours=2)
    assert next_cursor(t, t - timedelta(hours=1), t + timedelta(hours=1)) == t  # never earlier than before
    assert next_cursor(t, None, t + timedelta(hours=1)) == t


def test_an_order_changed_while_a_pass_pages_is_read_by_the_next_run(store: Store) -> None:
    """Order A is read by the updated pass's first request, then changed; order B, read later, is changed a second
    later and read. The cursor must not move past the pass start, or the next run would skip A's change."""
    fc = in_process("frontcore", orders=60, seed=3, api_key=KEY)
    settings = fc.settings(limit=10, concurrency=1, lookback_seconds=0, streams=["orders"])
    fc.sync(store, "c", settings)  # first run: everything; the next runs are incremental
    first_page = [str(o["id"]) for o in sorted(fc.sandbox.store.find("orders"), key=lambda d: -int(d["id"]))][:10]
    a, b = first_page[0], sorted(order_ids(store), key=int)[0]  # b is on the last page of the updated pass
    changed: list[str] = []

    updated_pass: list[httpx.Request] = []

    def change(request: httpx.Request) -> None:
        if "updated_at_min" in request.url.params:
            updated_pass.append(request)
        if len(updated_pass) == 2 and not changed:
            soon = datetime.now(UTC) + timedelta(seconds=30)  # after this run's start, on the vendor's clock
            fc.sandbox._fixed_now = soon
            fc.sandbox.update_order(a, {"is_paid": False})
            fc.sandbox._fixed_now = soon + timedelta(seconds=1)
            fc.sandbox.update_order(b, {"is_paid": True})
            changed.append(a)

    for record in fc.sandbox.store.find("orders"):  # every order "updated" once, so the updated pass has pages
        fc.sandbox.update_order(str(record["id"]), {})
    fc.sync(store, "c", settings, transport=Hooked(fc.transport(), change))
    assert changed
    fc.sandbox._fixed_now = None
    fc.sync(store, "c", settings)
    [(raw,)] = rows(store, "select raw from orders where order_id = ?", a)
    assert json.loads(raw)["updated_at"] == fc.sandbox.store.get("orders", int(a))["updated_at"]


class Hooked(httpx.AsyncBaseTransport):
    """Calls ``hook`` before passing each request on: a way to change the vendor's data while a sync pages."""

    def __init__(self, inner: httpx.AsyncBaseTransport, hook: Any) -> None:
        self.inner, self.hook = inner, hook
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        failure = self.hook(request)
        if isinstance(failure, httpx.Response):
            return failure
        return await self.inner.handle_async_request(request)


# --- the page checkpoint ---------------------------------------------------------------------------------------
def one_order(order_id: str, lines: int = 2) -> Rows:
    return Rows(orders=[{"order_id": order_id, "api": "frontcore", "order_number": order_id, "status": None,
                         "currency": "NOK", "total_minor": 100, "discount_minor": None, "tax_minor": None,
                         "is_paid": True, "customer_id": None, "customer_name": None, "customer_email": None,
                         "created_at": None, "updated_at": None, "raw": {"id": order_id}}],
                order_lines=[{"order_id": order_id, "line_no": n, "line_id": None, "product_id": None, "name": None,
                              "quantity": 1, "unit_price_minor": 50, "total_minor": 50, "currency": "NOK",
                              "raw": {"n": n}} for n in range(1, lines + 1)])


def test_a_failure_between_a_pages_rows_and_its_state_leaves_neither(store: Store) -> None:
    store.write_page("c", "frontcore", "orders", one_order("1"), {"version": 1, "page": 1})
    with pytest.raises(Exception):  # noqa: B017 - whatever the store raises, nothing of the page may remain
        store.write_page("c", "frontcore", "orders", one_order("2"), {"version": 1, "page": object()})
    assert order_ids(store) == {"1"} and rows(store, "select count(*) from order_lines") == [(2,)]
    assert store.load_state("c", "orders") == {"version": 1, "page": 1}


def fail_the_4th() -> Any:
    """A transport hook: the fourth request fails with a client error (not retried), every other goes through."""
    seen: list[int] = []

    def hook(request: httpx.Request) -> httpx.Response | None:
        seen.append(1)
        return httpx.Response(400, json={"error": "boom on request 4"}) if len(seen) == 4 else None
    return hook


def asked_seconds(request: httpx.Request) -> tuple[int, int]:
    """The creation seconds ``[min, max)`` a Frontcore request asks (Oslo local time; no minimum: from 2000)."""
    from zoneinfo import ZoneInfo

    def epoch(text: str | None, default: str) -> int:
        return int(datetime.fromisoformat(text or default).replace(tzinfo=ZoneInfo("Europe/Oslo")).timestamp())
    return epoch(request.url.params.get("created_at_min"), "2000-01-01"), \
        epoch(request.url.params.get("created_at_max"), "2100-01-01")


def test_a_failure_leaves_the_complete_slices_and_the_next_run_reads_only_the_others(store: Store) -> None:
    fc = in_process("frontcore", orders=95, seed=4, api_key=KEY)
    settings = fc.settings(limit=10, concurrency=3, streams=["orders"])

    [broken] = fc.sync(store, "c", settings, transport=Hooked(fc.transport(), fail_the_4th()))
    assert not broken.ok and "boom on request 4" in (broken.error or "")
    kept = len(order_ids(store))
    assert 0 < kept < 95
    done = [tuple(span) for span in state_of(store)["run"]["done"]]
    assert done
    resumed = Hooked(fc.transport(), lambda request: None)
    [ok] = fc.sync(store, "c", settings, transport=resumed)
    assert ok.ok, ok.error
    resumed_pass = [r for r in resumed.requests if "since_id" not in r.url.params
                    and "updated_at_min" not in r.url.params]
    asked = [asked_seconds(r) for r in resumed_pass]
    assert asked and not [(a, d) for a in asked for d in done if a[0] < d[1] and d[0] < a[1]]  # none complete
    # then the run's own incremental passes: the resumed pass saw changes only up to when it was planned
    assert any("since_id" in r.url.params for r in resumed.requests)
    assert order_ids(store) == {str(d["id"]) for d in fc.sandbox.store.find("orders")}
    assert ok.orders.new == 95 - kept and state_of(store)["run"] is None


def test_a_run_that_resumes_a_killed_runs_pass_also_holds_the_changes_made_since(store: Store) -> None:
    """The resumed pass only sees changes up to when the killed run planned it (an order changed on a page it had
    already read is behind it): the resuming run then reads its own incremental passes too."""
    fc = in_process("frontcore", orders=95, seed=4, api_key=KEY)
    settings = fc.settings(limit=10, concurrency=1, streams=["orders"])

    [broken] = fc.sync(store, "c", settings, transport=Hooked(fc.transport(), fail_the_4th()))
    assert not broken.ok
    first = min(order_ids(store), key=int)
    before = rows(store, "select is_paid from orders where order_id = ?", first)
    changed = fc.control("PATCH", f"orders/{first}", {})  # on page 1, which the killed run had read
    [ok] = fc.sync(store, "c", settings)
    assert ok.ok, ok.error
    assert rows(store, "select is_paid from orders where order_id = ?", first) == [(changed["is_paid"],)] != before


def test_a_failure_while_storing_page_n_keeps_the_state_of_page_n_minus_1(store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fc = in_process("frontcore", orders=45, seed=6, api_key=KEY)
    settings = fc.settings(limit=10, concurrency=2, streams=["orders"])
    original = Store.write_page
    calls: dict[str, Any] = {"n": 0, "orders": 0, "state": None}

    def write_page(self: Store, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk unplugged")
        calls["orders"] += len(args[3].orders)
        calls["state"] = args[4]
        return original(self, *args)

    monkeypatch.setattr(Store, "write_page", write_page)
    [broken] = fc.sync(store, "c", settings)
    assert not broken.ok and "disk unplugged" in (broken.error or "")
    assert len(order_ids(store)) == calls["orders"] > 0  # the two pages stored, with the state of the second
    assert state_of(store)["run"] == calls["state"]["run"]
    monkeypatch.setattr(Store, "write_page", original)
    [ok] = fc.sync(store, "c", settings)
    assert ok.ok and ok.orders.new == 45 - calls["orders"] and len(order_ids(store)) == 45


# --- typed state: filters ----------------------------------------------------------------------------------------
NARROWER = {
    "frontcore": {"created_at_min": "2026-03-01"},
    "eguma": {"created_at_after": "2026-03-01T00:00:00"},
    "firespring": {"date_start": "2026-03-01"},
    "prio": {"order_created_from": "2026-03-01T00:00:00+00:00"},
}


@pytest.mark.parametrize("api", sorted(NARROWER))
def test_a_changed_filter_is_reported_and_the_next_run_reads_what_it_adds(api: str, tmp_path: Any) -> None:
    sandbox = in_process(api, orders=80, seed=2)
    base = sandbox.settings(streams=["orders"]) if api == "frontcore" else sandbox.settings()
    narrow, wide = open_store("sqlite://"), open_store("sqlite://")
    [first] = sandbox.sync(narrow, "c", {**base, **NARROWER[api]})
    assert first.ok, first.error and not first.notes
    [second] = sandbox.sync(narrow, "c", base)
    assert second.ok, second.error
    assert any("filters changed" in note and next(iter(NARROWER[api])) in note for note in second.notes)
    sandbox.sync(wide, "c", base)
    everything = order_ids(wide)
    assert order_ids(narrow) == everything and len(everything) > first.orders.new > 0


def test_a_state_of_another_version_is_not_guessed_at(store: Store) -> None:
    fc = in_process("frontcore", orders=20, seed=1, api_key=KEY)
    settings = fc.settings(streams=["orders"])
    store.write_page("c", "frontcore", "orders", Rows(), {"version": 99, "max_id": 10**9})
    [result] = fc.sync(store, "c", settings)
    assert result.ok and any("another version" in note for note in result.notes)
    assert len(order_ids(store)) == 20


def test_a_state_written_by_ordersync_0_1_is_upgraded_not_read_again(store: Store) -> None:
    fc = in_process("frontcore", orders=20, seed=1, api_key=KEY)
    settings = fc.settings(streams=["orders"])
    newest = max(int(d["id"]) for d in fc.sandbox.store.find("orders"))
    store.write_page("c", "frontcore", "orders", Rows(), {"max_id": newest, "time_cursor": "2100-01-01T00:00:00+00:00",
                                                          "pending": None})
    recorder = Hooked(fc.transport(), lambda request: None)
    [result] = fc.sync(store, "c", settings, transport=recorder)
    assert result.ok and not result.notes and result.orders.new == 0  # nothing new since that run
    assert [r.url.params.get("since_id") for r in recorder.requests][0] == str(newest)
    assert state_of(store)["version"] == 1 and state_of(store)["max_id"] == newest


def test_status_asks_the_api_to_describe_its_state(store: Store) -> None:
    fc = in_process("frontcore", orders=25, seed=1, api_key=KEY)
    settings = fc.settings(limit=10, streams=["orders"])
    fc.sync(store, "c", settings)
    shown = status.describe(parse_source("c", settings), "orders", state_of(store))
    assert set(shown) == {"data up to", "next sweep day"} and "unfinished run" not in shown
    midway = {**state_of(store), "run": {"passes": ["new", "updated"], "index": 1, "done": [[10, 20], [30, 40]],
                                         "started": "2026-06-01T00:00:00Z"}}
    assert status.describe(parse_source("c", settings), "orders", midway)["unfinished run"] == \
        "unfinished run of 2026-06-01 00:00 UTC: pass 2 of 2 (changed records), 2 stretches stored"
    assert "another version" in status.describe(parse_source("c", settings), "orders", {"max_id": 3})["state"]


# --- stop ------------------------------------------------------------------------------------------------------
def test_stop_ends_after_the_committed_page_and_starts_nothing_else(store: Store) -> None:
    fc = in_process("frontcore", orders=50, seed=7, api_key=KEY)
    stop = threading.Event()

    settings = parse_source("c", fc.settings(limit=10, concurrency=3))
    results = asyncio.run(sync_source(store, "c", settings, progress=StopAfterPages(1, stop), stop=stop,
                                      transport=fc.transport()))
    assert [(r.stream, r.ok, r.interrupted) for r in results] == [("orders", True, True)]  # customers not started
    kept = len(order_ids(store))
    assert 0 < kept < 50 and state_of(store)["run"]["done"]  # the first page stored, a slice complete
    assert rows(store, "select stream, status from _ordersync_runs") == [("orders", "interrupted")]
    [orders, customers] = fc.sync(store, "c", fc.settings(limit=10, concurrency=3))
    assert orders.ok and customers.ok and orders.orders.new == 50 - kept


# --- bugs found in review --------------------------------------------------------------------------------------
def test_the_same_order_twice_in_one_page_is_stored_once_with_its_lines_once(store: Store) -> None:
    order = {"id": 7, "customer": None, "lines": [{"id": 1, "quantity": 1}, {"id": 2, "quantity": 2}],
             "created_at": "2026-01-01T10:00:00+01:00", "updated_at": None}
    newer = {**order, "lines": [{"id": 1, "quantity": 5}]}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[order, newer] if request.url.params.get("page") == "1" else [])

    settings = parse_source("c", {"type": "frontcore", "api_key": KEY, "streams": ["orders"],
                                  "base_url": "http://x.test/v2"})
    [result] = asyncio.run(sync_source(store, "c", settings, transport=httpx.MockTransport(answer)))
    assert result.ok, result.error
    assert rows(store, "select order_id, line_no, quantity from order_lines") == [("7", 1, 5)]  # the last one read


def test_a_source_whose_client_cannot_be_built_does_not_lose_the_others(store: Store,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ordersync.apis.eguma.client import EgumaClient

    fc = in_process("frontcore", orders=15, seed=1, api_key=KEY)

    def broken(self: Any) -> Any:
        raise RuntimeError("cannot build")

    monkeypatch.setattr(EgumaClient, "http_options", broken)
    sources = {"c": parse_source("c", fc.settings(streams=["orders"])),
               "v": parse_source("v", {"type": "eguma", "api_key": KEY, "base_url": "http://x.test/v1"})}

    async def run() -> list[Any]:
        with monkeypatch.context() as m:  # every client talks to the in-process Frontcore sandbox
            original = httpx.AsyncClient.__init__

            def init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **{**kwargs, "transport": fc.transport()})

            m.setattr(httpx.AsyncClient, "__init__", init)
            return await sync_all(store, sources)

    results = {r.source: r for r in asyncio.run(run())}
    assert results["c"].ok and results["c"].orders.new == 15
    assert not results["v"].ok and "cannot build" in (results["v"].error or "")


def test_an_unknown_host_fails_at_once_naming_the_host(store: Store) -> None:
    settings = parse_source("c", {"type": "frontcore", "api_key": KEY, "streams": ["orders"], "max_retries": 5,
                                  "base_url": "http://no-such-host.invalid/v2"})
    [result] = asyncio.run(sync_source(store, "c", settings))
    assert not result.ok and "no-such-host.invalid" in (result.error or "") and "unknown" in (result.error or "")
    assert result.requests == 1 and "\n" not in (result.error or "")


def test_secret_settings_are_never_echoed_whatever_their_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_source("tix", {"type": "prio", "client_id": ["id-4711-secretish"], "client_secret": "s"})
    assert "client_id" in str(caught.value) and "id-4711-secretish" not in str(caught.value)
    with pytest.raises(ConfigError) as plain:  # a setting that is not a secret is shown, to help fix it
        parse_source("tix", {"type": "prio", "client_id": "i", "client_secret": "s", "window_days": "many"})
    assert "'many'" in str(plain.value)


def test_in_process_sandboxes_answer_like_the_api(store: Store) -> None:
    sandbox: InProcess = in_process("firespring", orders=30, seed=5)
    [result] = sandbox.sync(store, "c", sandbox.settings(count=7))
    assert result.ok and result.orders.new == len(order_ids(store)) > 0


def test_states_of_ordersync_0_1_keep_their_cursors_unless_a_run_stopped_half_way() -> None:
    from ordersync.apis.eguma.client import EgumaState
    from ordersync.apis.prio.client import PrioState

    eguma, note = EgumaState.load({"cursor": "2026-06-20T01:55:00", "window_seconds": 86400}, {"f": 1})
    assert note is None and eguma.cursor == datetime(2026, 6, 20, 1, 55) and eguma.window_seconds == 86400
    ranges = {"2025-01-01T00:00:00.000+00:00": "Wed, 01 Jan 2025 00:00:00 GMT"}
    prio, note = PrioState.load({"cursor": "2026-06-01T00:00:00+00:00", "ranges": ranges, "pending": None}, {})
    assert note is None and prio.ranges == ranges and prio.cursor == datetime(2026, 6, 1, tzinfo=UTC)
    midway, note = PrioState.load({"cursor": None, "ranges": {}, "pending": {"window": 3}}, {})
    assert midway.cursor is None and note is not None and "another version" in note
