"""Slices inside one creation range: ``concurrency`` slices in flight over a dense stretch of orders, yet every
order stored once, whatever enters or leaves the result meanwhile, across a resume (only the slices not complete
are read again) and across orders sharing one creation instant (all in-process, no wall clock)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ordersync.config import parse_source
from ordersync.store import Store
from ordersync.sync import StreamResult, sync_source
from tests.apis.prio.helpers import Recorder, refs, run
from tests.support import InProcess, StopAfterPages, in_process, rows, running

# One creation range over the sandbox's whole history (about three years up to mid-2026): the dense stretch that
# ranges alone cannot read in parallel.
ONE_RANGE = {"order_created_from": "2023-01-01T00:00:00+00:00", "window_days": 3650, "items_per_page": 10}


class InFlight(Recorder):
    """Counts the orders requests in flight at once. Each one yields to the event loop before it is answered, so
    that every request the client has ready reaches the transport first; ``after`` runs once the n-th orders
    request is answered (to change the data while the client is paging)."""

    def __init__(self, after: dict[int, Callable[[], None]] | None = None) -> None:
        super().__init__()
        self.now = self.most = self.answered = 0
        self.after = after or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/orders"):
            return await super().handle_async_request(request)
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(50):
                await asyncio.sleep(0)
            response = await super().handle_async_request(request)
        finally:
            self.now -= 1
        self.answered += 1
        if self.answered in self.after:
            self.after[self.answered]()
        return response


def stored(store: Store) -> list[str]:
    return [ref for (ref,) in rows(store, "SELECT order_id FROM orders")]


def confirmed(r: InProcess) -> set[str]:
    return {d["order_reference"] for d in r.sandbox.store.find("orders") if d["order_status"] == "ORDER_CONFIRMED"}


def test_a_dense_range_is_read_with_concurrency_requests_in_flight(store: Store) -> None:
    with in_process("prio", orders=300, seed=5) as r:
        everything = refs(r.sandbox.store.find("orders"))
        transport = InFlight()
        [result] = r.sync(store, "tix", r.settings(**ONE_RANGE, concurrency=4), transport=transport)
    assert result.ok, result.error
    assert transport.most == 4  # slices of the one range are read at once
    assert sorted(stored(store)) == sorted(everything)
    sent = transport.orders_requests()
    # a full first answer completes the stretch before its last order (sorted by creation): about a request a page
    assert len(sent) <= 300 / 10 * 1.5 + 12


@pytest.mark.parametrize("change", ["leaves", "enters"])
def test_an_order_leaving_or_entering_the_result_while_slices_are_read(store: Store, change: str) -> None:
    """With a status filter, an order read already is cancelled (it leaves the result) or confirmed again (it
    enters) while other slices are in flight: nothing is lost (leaving), nothing stored twice (entering)."""
    with in_process("prio", orders=300, seed=6) as r:
        before = confirmed(r)
        early = sorted(r.sandbox.store.find("orders"), key=lambda d: (d["order_created"], d["order_reference"]))[:8]
        if change == "leaves":
            which, data = next(d for d in early if d["order_status"] == "ORDER_CONFIRMED"), {"cancel": True}
        else:
            which, data = next(d for d in early if d["order_status"] != "ORDER_CONFIRMED"), \
                {"order_status": "ORDER_CONFIRMED"}
        transport = InFlight(after={3: lambda: r.sandbox.update_order(which["order_reference"], data)})
        [result] = r.sync(store, "tix", r.settings(**ONE_RANGE, order_status="ORDER_CONFIRMED", concurrency=4),
                          transport=transport)
    assert result.ok, result.error
    assert set(stored(store)) == before  # an order entering where the pass has been: the next run's job
    assert rows(store, "SELECT count(*) - count(DISTINCT order_id) FROM orders") == [(0,)]
    assert 1 < transport.most <= 4


def test_a_run_stopped_between_slices_resumes_with_the_slices_not_complete(store: Store) -> None:
    """A run stopped after a few pages keeps its complete slices (``run.done``, milliseconds of creation time); the
    next run asks none of them again and stores every order once."""
    from ordersync.apis.prio.client import millis

    with in_process("prio", orders=300, seed=7) as r:
        everything = refs(r.sandbox.store.find("orders"))
        settings = parse_source("tix", r.settings(**ONE_RANGE, concurrency=4))
        stop = threading.Event()

        [stopped] = asyncio.run(sync_source(store, "tix", settings, progress=StopAfterPages(5, stop), stop=stop,
                                            transport=InFlight()))
        assert stopped.ok and stopped.interrupted
        state = json.loads(rows(store, "SELECT state FROM _ordersync_state")[0][0])
        done = [tuple(span) for span in state["run"]["done"]]
        assert done and all(lo < hi for lo, hi in done)
        transport = InFlight()
        [result] = r.sync(store, "tix", r.settings(**ONE_RANGE, concurrency=4), transport=transport)
    assert result.ok, result.error
    assert sorted(stored(store)) == sorted(everything)
    asked = [(millis(datetime.fromisoformat(q.url.params["order_created_from"])),
              millis(datetime.fromisoformat(q.url.params["order_created_to"])) + 1)
             for q in transport.orders_requests() if "order_modified" not in q.url.params]
    assert asked and not [(q, d) for q in asked for d in done if q[0] < d[1] and d[0] < q[1]]


def test_many_orders_at_one_creation_instant_across_page_boundaries_are_each_stored_once(store: Store) -> None:
    with in_process("prio", orders=120, seed=8) as r:
        r.control("POST", "clock", {"now": "2025-01-01T12:00:00+00:00"})
        same = {r.control("POST", "orders", {})["order_reference"] for _ in range(25)}  # 2.5 pages at one instant
        everything = refs(r.sandbox.store.find("orders"))
        assert len({d["order_created"] for d in r.sandbox.store.find("orders") if d["order_reference"] in same}) == 1
        transport = InFlight()
        [result] = r.sync(store, "tix", r.settings(**ONE_RANGE, concurrency=4), transport=transport)
    assert result.ok, result.error
    assert sorted(stored(store)) == sorted(everything) and len(everything) == 145
    assert 1 < transport.most <= 4


START = datetime(2024, 1, 1, tzinfo=UTC)


class Fake:
    """A Prio server in a few lines, for what the sandbox does not do: orders sharing one creation instant come in
    a different order on every request (``shuffle``), ``start_index`` ignored (``no_index``)."""

    def __init__(self, created: list[datetime], shuffle: bool = False, no_index: bool = False) -> None:
        self.orders = [{"order_reference": f"R{n:03}", "order_created": c.isoformat(),
                        "order_modified": START.isoformat()} for n, c in enumerate(created)]
        self.shuffle, self.no_index = random.Random(3) if shuffle else None, no_index
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "tok-abc", "expires_in": 3600})
        q = request.url.params
        lo, hi = (datetime.fromisoformat(q[k]) for k in ("order_created_from", "order_created_to"))
        found = [o for o in self.orders if lo <= datetime.fromisoformat(o["order_created"]) <= hi]
        tiebreak = {o["order_reference"]: self.shuffle.random() if self.shuffle else 0 for o in found}
        found.sort(key=lambda o: (o["order_created"], tiebreak[o["order_reference"]], o["order_reference"]))
        size = int(q["items_per_page"])
        offset = (int(q.get("page", "1")) - 1) * size
        if "start_index" in q and not self.no_index:
            offset = int(q["start_index"]) - 1
        return httpx.Response(200, json={"data": {
            "items": found[offset:offset + size], "items_per_page": size, "total_items": len(found),
            "total_pages": -(-len(found) // size), "page_index": offset // size + 1}})

    def sync(self, store: Store, **settings: Any) -> StreamResult:
        base = {"type": "prio", "client_id": "id-1", "client_secret": "secret-1", "max_retries": 0,
                "base_url": "http://prio.test/v3.4/distributor", "concurrency": 4, "items_per_page": 10,
                "order_created_from": "2023-06-01T00:00:00+00:00", "window_days": 3650}
        [result] = asyncio.run(sync_source(store, "tix", parse_source("tix", {**base, **settings}),
                                           transport=httpx.MockTransport(self)))
        return result


def test_orders_sharing_an_instant_in_a_different_order_on_every_request_are_each_read_once(store: Store) -> None:
    """Groups of 2 to 7 orders per instant, many across page boundaries: a page ending inside a group goes on by
    keyset from that instant (the order within a group cannot be relied on between requests); a slice of one
    millisecond that holds more than a page is read by page number."""
    rng = random.Random(5)
    created = [START + timedelta(seconds=n) for n in range(60) for _ in range(rng.randint(2, 7))]
    fake = Fake(created, shuffle=True)
    result = fake.sync(store)
    assert result.ok, result.error
    assert sorted(stored(store)) == sorted(o["order_reference"] for o in fake.orders)
    assert rows(store, "SELECT count(*) FROM orders") == [(len(created),)]
    assert all("start_index" not in q.url.params for q in fake.sent)


def test_over_real_http_a_dense_range_read_in_slices_stores_every_order_once(store: Store) -> None:
    """The same slices against the sandbox on a real socket (answers arriving in any order): every order once, with
    about one request per page."""
    with running("prio", orders=300, seed=5) as r:
        everything = refs(r.sandbox.store.find("orders"))
        recorder = Recorder()
        [result] = run(store, "tix", r.settings(**ONE_RANGE, concurrency=4), recorder=recorder)
    assert result.ok, result.error
    assert sorted(stored(store)) == sorted(everything)
    sent = recorder.orders_requests()
    assert len(sent) <= 300 / 10 * 1.5 + 12
