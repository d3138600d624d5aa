"""The one paging loop against servers that misbehave: pages that never end, windows that never shrink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ordersync.config import parse_source
from ordersync.store import Store, open_store
from ordersync.sync import StreamResult, sync_source
from tests.support import InProcess, in_process, rows

CAP = 300  # a test server answers 400 after this many requests, so that a loop that never ends still ends here


def capped(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) > CAP:
            return httpx.Response(400, json={"error": "test cap reached"})
        return answer(request)

    return httpx.MockTransport(handler), sent


def run(settings: dict[str, Any], transport: httpx.AsyncBaseTransport) -> StreamResult:
    parsed = parse_source("s", {"max_retries": 0, **settings})
    results = asyncio.run(sync_source(open_store("sqlite://"), "s", parsed, transport=transport))
    return results[0]


def test_a_server_that_repeats_the_same_page_is_stopped_with_one_line() -> None:
    page = [{"id": 1000 - n, "lines": [], "customer": None} for n in range(10)]
    transport, sent = capped(lambda request: httpx.Response(200, json=page))
    result = run({"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 10,
                  "streams": ["orders"], "requests_per_second": None}, transport)
    assert not result.ok and "test cap" not in (result.error or "")
    assert "same records" in (result.error or "") and "\n" not in (result.error or "")
    # records without a creation time cannot show that the filters are ignored: every full first answer halves its
    # slice (about log2 of the 27 years since 2000 in seconds), and the one-second slice's second page repeats
    pages = [int(r.url.params["page"]) for r in sent]
    assert pages.count(2) == 1 and max(pages) == 2 and len(sent) < 40


def test_a_firespring_server_announcing_endless_pages_of_the_same_orders_is_stopped() -> None:
    body = {"data": [{"id": n, "date_created": "2024-01-01T00:00:00Z"} for n in range(5)],
            "meta": {"pagination": {"total": 5 * 10**7, "count": 5, "per_page": 5, "current_page": 1,
                                    "total_pages": 10**7}}}
    transport, sent = capped(lambda request: httpx.Response(200, json=body))
    result = run({"type": "firespring", "api_key": "k-123", "base_url": "http://fs.test", "website_id": 4,
                  "count": 5}, transport)
    error = result.error or ""
    assert not result.ok and "test cap" not in error and ("same records" in error or "ignore the date" in error)
    assert len(sent) < 12


def test_a_prio_server_that_ignores_its_parameters_is_stopped() -> None:
    items = [{"order_reference": f"R{n}", "order_created": "2024-01-01T00:00:00.000Z",
              "order_modified": "2024-01-01T00:00:00.000Z"} for n in range(10)]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "tok-abc", "expires_in": 3600})
        return httpx.Response(200, json={"data": {"items": items, "items_per_page": 10, "total_pages": 10**7,
                                                  "page_index": 1}})

    transport, sent = capped(answer)
    result = run({"type": "prio", "client_id": "id-1", "client_secret": "secret-1",
                  "base_url": "http://prio.test/v3.4/distributor"}, transport)
    error = result.error or ""
    assert not result.ok and "test cap" not in error and "seems to ignore" in error
    assert len(sent) < 20


def test_an_eguma_server_that_ignores_the_date_filters_is_stopped_at_its_first_answer() -> None:
    orders = [{"id": f"u{n}", "updated_at": "2020-01-01T00:00:00", "created_at": "2020-01-01T00:00:00"}
              for n in range(1500)]
    transport, sent = capped(lambda request: httpx.Response(200, json=orders))
    result = run({"type": "eguma", "api_key": "k-123456", "base_url": "http://eg.test/v1"}, transport)
    error = result.error or ""
    assert not result.ok and "test cap" not in error and "ignore the date filters" in error and "\n" not in error
    assert "k-123456" not in error and len(sent) <= 4  # the windows asked at once (concurrency 4), no more


def test_a_server_cycling_over_the_same_pages_is_stopped_when_nothing_new_comes() -> None:
    pages = [[{"id": 1000 - 10 * p - n, "lines": [], "customer": None} for n in range(10)] for p in range(2)]
    transport, sent = capped(lambda request: httpx.Response(200, json=pages[int(request.url.params["page"]) % 2]))
    result = run({"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 10,
                  "streams": ["orders"], "requests_per_second": None, "concurrency": 1}, transport)
    assert not result.ok and "test cap" not in (result.error or "") and "nothing new" in (result.error or "")
    # full first answers split the slices down to one second (no creation time shows where the records are); that
    # second is paged: two new pages, then five repeats, and the pass stops
    pages = [int(r.url.params["page"]) for r in sent]
    assert sorted(p for p in pages if p > 1) == [2, 3, 4, 5, 6, 7] and len(sent) < 40
    assert result.orders.new == 20


class SecondSliceFailsOnce(httpx.AsyncBaseTransport):
    """The in-process sandbox, except that the second request of the pass waits until the first is answered, then a
    new order arrives (the newest comes first) and that request fails (500), to be retried."""

    def __init__(self, fc: InProcess) -> None:
        self.fc, self.inner, self.asked, self.failed = fc, fc.transport(), 0, False
        self.first_answered = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        if self.asked == 2 and not self.failed:
            self.failed = True
            await self.first_answered.wait()
            self.fc.sandbox.create_order({})
            return httpx.Response(500, json={"error": "busy"})
        response = await self.inner.handle_async_request(request)
        self.first_answered.set()
        return response


def test_a_slice_retried_while_orders_arrive_loses_no_order(store: Store) -> None:
    """A slice's request fails (500) after another slice was answered; a new order arrives before it is retried.
    Every order that existed when the run started is stored by it; the new one by the next run; none twice."""
    fc = in_process("frontcore", orders=60, seed=8, api_key="k-123")
    before = {str(d["id"]) for d in fc.sandbox.store.find("orders")}
    transport = SecondSliceFailsOnce(fc)
    settings = fc.settings(limit=10, concurrency=3, streams=["orders"], max_retries=3)
    [result] = fc.sync(store, "c", settings, transport=transport)
    assert result.ok, result.error
    assert transport.failed
    assert {r[0] for r in rows(store, "select order_id from orders")} >= before
    fc.sync(store, "c", settings)
    assert {r[0] for r in rows(store, "select order_id from orders")} == {str(d["id"]) for d in
                                                                        fc.sandbox.store.find("orders")}
    assert rows(store, "select count(*) - count(distinct order_id) from orders") == [(0,)]


def test_the_rolling_sweep_is_paced_by_time_owes_at_most_one_lap_and_learns_where_history_begins() -> None:
    from datetime import UTC, date, datetime, timedelta

    from ordersync.paging import RollingSweep, RunProgress, Sweep

    horizon = date(2024, 4, 10)  # 100 days after the origin
    sweep = RollingSweep(period=timedelta(days=10), horizon=lambda _state, _now: horizon, day=lambda m: m.date())
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = Sweep(origin=date(2024, 1, 1), next=date(2024, 1, 1), due=t0, lap_started=t0)
    assert sweep.plan(at, None, t0 + timedelta(hours=2)) is None  # less than one day's share: nothing yet
    cut = sweep.plan(at, None, t0 + timedelta(days=1))
    assert cut is not None and (cut.start, cut.end) == (date(2024, 1, 1), date(2024, 1, 11))  # 100 days / 10 days
    late = sweep.plan(at, None, t0 + timedelta(days=30))  # a month later: at most one lap, up to the horizon
    assert late is not None and (late.start, late.end) == (date(2024, 1, 1), horizon)
    run = RunProgress(passes=["sweep"], started=late.planned, sweep=late, oldest=datetime(2024, 2, 1, tzinfo=UTC))
    folded = sweep.fold(at, run, full=False)
    assert folded.next == horizon and folded.due == late.planned - timedelta(days=10)  # owes at most one lap
    lap = sweep.plan(folded, None, late.planned + timedelta(days=5))
    assert lap is not None and lap.new_lap and lap.start == date(2024, 2, 1)  # the lap before found nothing older
    assert lap.end == horizon  # the month without runs still owes one whole lap: all 69 days at once


class HeldAnswers:
    """A server that answers only when the test says: ``fetch`` parks each request; :meth:`answer_until` answers
    one request every 20 turns of the event loop (the newest or the oldest unanswered) until ``consumer`` ends,
    counting the most requests unanswered at once."""

    def __init__(self) -> None:
        from ordersync.paging import Answer, Request

        self.unanswered: list[tuple[Request, asyncio.Future[Answer]]] = []
        self.most = 0

    async def fetch(self, request: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.unanswered.append((request, future))
        return await future

    def live(self) -> list[Any]:
        return [(q, f) for q, f in self.unanswered if not f.done()]

    async def answer_until(self, consumer: asyncio.Future[None], answer: Callable[[Any], Any],
                           newest_first: bool) -> None:
        while not consumer.done():
            for _ in range(20):
                await asyncio.sleep(0)
            live = self.live()
            self.most = max(self.most, len(live))
            if live:
                request, future = live[-1] if newest_first else live[0]
                future.set_result(answer(request))
        await consumer


@pytest.mark.parametrize("newest_first", [False, True])
def test_slices_in_flight_never_exceed_the_concurrency_and_pages_of_one_slice_never_overlap(
        newest_first: bool) -> None:
    """``read_slices`` over a dense span with ``concurrency`` 3 and a server that answers the newest or the oldest
    request first: never more than 3 requests unanswered, never two of one slice at once, and every record is
    handed over (a one-unit slice that holds more than a page is read page after page, and, with no count announced,
    read a second time to confirm it: only its records come twice)."""
    from ordersync.paging import Answer, Carver, NumberedPages, Request, SlicePlan, read_slices

    places = [n // 3 for n in range(600)] + [150] * 25  # three records a unit, and one unit of 28 (three pages)
    records = [{"id": n, "at": at} for n, at in enumerate(places)]
    reader = NumberedPages("orders", lambda part: {"lo": part[0], "hi": part[1]}, size=10,
                           place=lambda r: r["at"], identity=lambda r: r["id"])
    plan = SlicePlan((0, 200), reader, Carver(target=8), concurrency=3, place=lambda r: r["at"], path="orders")
    server = HeldAnswers()
    overlapping: list[tuple[int, int]] = []

    def answer(request: Request) -> Answer:
        q = request.params
        part = (q["lo"], q["hi"])
        if sum(1 for other, _ in server.live() if (other.params["lo"], other.params["hi"]) == part) > 1:
            overlapping.append(part)
        found = [r for r in records if q["lo"] <= r["at"] < q["hi"]]
        return Answer(found[(q["page"] - 1) * 10:q["page"] * 10])

    async def main() -> list[int]:
        read: list[int] = []

        async def consume() -> None:
            async for chunk, _done in read_slices(plan, [], server.fetch):
                read.extend(r["id"] for r in chunk.records)

        await server.answer_until(asyncio.ensure_future(consume()), answer, newest_first=newest_first)
        return read

    read = asyncio.run(main())
    assert sorted(set(read)) == [r["id"] for r in records]
    twice = {n for n in read if read.count(n) > 1}
    assert twice <= {r["id"] for r in records if r["at"] == 150}
    assert server.most <= 3 and not overlapping


def test_the_done_spans_handed_with_each_chunk_are_complete_slices_and_a_second_reading_skips_them() -> None:
    """What ``read_slices`` hands with each chunk is the merged complete slices: reading again with them as
    ``done`` asks nothing inside them and hands over exactly the records not yet handed."""
    from ordersync.paging import Answer, Carver, NumberedPages, Request, SlicePlan, read_slices

    records = [{"id": n, "at": 2 * n} for n in range(300)]
    asked: list[tuple[int, int]] = []

    async def fetch(request: Request) -> Answer:
        q = request.params
        asked.append((q["lo"], q["hi"]))
        found = [r for r in records if q["lo"] <= r["at"] < q["hi"]]
        return Answer(found[(q["page"] - 1) * 10:q["page"] * 10])

    def plan() -> SlicePlan:
        reader = NumberedPages("orders", lambda part: {"lo": part[0], "hi": part[1]}, size=10,
                               place=lambda r: r["at"])
        return SlicePlan((0, 600), reader, Carver(target=8), concurrency=2, place=lambda r: r["at"], path="orders")

    async def first(stop_after: int) -> tuple[list[int], list[tuple[int, int]]]:
        read: list[int] = []
        done: list[tuple[int, int]] = []
        async for chunk, done_now in read_slices(plan(), [], fetch):
            read.extend(r["id"] for r in chunk.records)
            done = done_now
            if len(read) >= stop_after:
                break
        return read, done

    async def rest(done: list[tuple[int, int]]) -> list[int]:
        return [r["id"] async for chunk, _ in read_slices(plan(), done, fetch) for r in chunk.records]

    read, done = asyncio.run(first(120))
    assert done
    covered = {r["id"] for r in records if any(lo <= r["at"] < hi for lo, hi in done)}
    assert covered <= set(read)  # a complete slice's records were all handed over
    asked.clear()
    again = asyncio.run(rest(done))
    assert all(not (lo < d_hi and d_lo < hi) for lo, hi in asked for d_lo, d_hi in done), (asked, done)
    assert sorted(set(again) | covered) == [r["id"] for r in records] and not set(again) & covered
    assert len(again) == len(set(again))


def test_a_server_starting_over_after_a_long_list_is_stopped_when_nothing_new_comes() -> None:
    """The records read long ago are remembered too: a one-unit slice whose server answers its first page again
    after 20,000 records (more than the guard keeps in its set of latest digests) is stopped after five pages of
    repeats."""
    from ordersync.errors import ApiError
    from ordersync.paging import Answer, NumberedPages, Request

    pages, size = 40, 500
    asked: list[int] = []

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        asked.append(page)
        if page > 3 * pages:
            return Answer([])  # a guard that never stops would read on here: end the slice
        first = (page - 1) % pages * size  # page 41 is page 1 again
        return Answer([{"id": first + n, "total": "9.50"} for n in range(size)])

    async def main() -> None:
        reader = NumberedPages("orders", lambda _part: {}, size=size)
        async for _ in reader((0, 1), fetch):
            pass

    with pytest.raises(ApiError, match="nothing new"):
        asyncio.run(main())
    assert max(asked) == pages + 5  # five repeats


def test_the_records_a_pass_has_read_take_a_few_bytes_each() -> None:
    """A first run reads a whole history in one pass: what the guard remembers of each record must not make a
    sync's memory grow with the history (a set of Python ints took about 60 bytes a record)."""
    import tracemalloc

    from ordersync.paging import SeenRecords

    digests = [hash(f"record {n}".encode()) for n in range(200_000)]
    tracemalloc.start()
    try:
        seen = SeenRecords()
        for start in range(0, len(digests), 250):
            seen.update(digests[start:start + 250])
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 200_000 * 16, held  # a set of the same ints: about 12 MB
    assert all(digest in seen for digest in digests[::997]) and hash(b"never read") not in seen


def test_a_server_ignoring_page_and_stamping_each_answer_is_stopped_by_record_keys() -> None:
    """Issue 24, point 4: a server that ignores ``page`` and stamps every record with the moment of its answer
    makes every answer's text new; the loop guard compares records by key and cursor, so it still stops."""
    import itertools
    from datetime import UTC, datetime

    stamps = itertools.count()

    def answer(request: httpx.Request) -> httpx.Response:
        served = f"{datetime.now(UTC).isoformat()}#{next(stamps)}"
        return httpx.Response(200, json=[{"id": 1000 - n, "created_at": "2024-05-01T10:00:00+02:00",
                                          "served_at": served, "lines": [], "customer": None} for n in range(10)])

    transport, sent = capped(answer)
    result = run({"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 10,
                  "streams": ["orders"], "requests_per_second": None, "concurrency": 1}, transport)
    error = result.error or ""
    assert not result.ok and "test cap" not in error and "same records" in error and "\n" not in error
    assert len(sent) < 60


def test_a_list_that_moves_by_exactly_a_page_between_two_pages_is_read_again_not_refused() -> None:
    """A one-second slice read newest first: five orders (a page) join its head between pages 1 and 2, so page 2
    repeats page 1. The list moved (page 1, asked again, holds the new orders): the slice is read again and every
    order is handed over. A server that repeats one page whatever is asked is still refused (the tests above)."""
    from ordersync.paging import NumberedPages
    from ordersync.paging.stream import Answer, Request

    ids, asked = list(range(120, 100, -1)), []  # 20 orders of one second, newest first

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        asked.append(page)
        if asked == [1, 2]:  # the vendor adds a page of orders at the head, then reads page 2
            ids[:0] = range(125, 120, -1)
        return Answer([{"id": i} for i in ids[(page - 1) * 5:page * 5]])

    reader = NumberedPages("/orders", lambda part: {}, 5, identity=lambda r: r["id"], newest_first=True,
                           rank=lambda r: r["id"])

    async def read() -> list[int]:
        return [r["id"] for chunk in [c async for c in reader((0, 1), fetch)] for r in chunk.records]

    handed = asyncio.run(read())
    assert set(range(101, 121)) <= set(handed)  # every order there before the slice was read
    assert asked.count(1) >= 2  # page 1 was asked again: the reading started over
