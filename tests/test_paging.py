"""The one paging loop against servers that misbehave: pages that never end, windows that never shrink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ordersync.config import parse_source
from ordersync.store import Store
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
    results = asyncio.run(sync_source(Store("sqlite://"), "s", parsed, transport=transport))
    return results[0]


def test_a_server_that_repeats_the_same_page_is_stopped_with_one_line() -> None:
    page = [{"id": 1000 - n, "lines": [], "customer": None} for n in range(10)]
    transport, sent = capped(lambda request: httpx.Response(200, json=page))
    result = run({"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 10,
                  "streams": ["orders"], "requests_per_second": None}, transport)
    assert not result.ok and "test cap" not in (result.error or "")
    assert "same records" in (result.error or "") and "\n" not in (result.error or "")
    assert len(sent) < 10


def test_a_firespring_server_announcing_endless_pages_of_the_same_orders_is_stopped() -> None:
    body = {"data": [{"id": n, "date_created": "2024-01-01T00:00:00Z"} for n in range(5)],
            "meta": {"pagination": {"total": 5 * 10**7, "count": 5, "per_page": 5, "current_page": 1,
                                    "total_pages": 10**7}}}
    transport, sent = capped(lambda request: httpx.Response(200, json=body))
    result = run({"type": "firespring", "api_key": "k-123", "base_url": "http://fs.test", "website_id": 4,
                  "count": 5}, transport)
    assert not result.ok and "test cap" not in (result.error or "") and "same records" in (result.error or "")
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
    assert not result.ok and "test cap" not in (result.error or "") and "ignore the paging" in (result.error or "")
    assert len(sent) < 20  # the token, two rounds of read-ahead + spare (8: every range's first page is asked at once)


def test_an_eguma_server_that_ignores_the_date_filters_is_stopped_at_its_first_answer() -> None:
    orders = [{"id": f"u{n}", "updated_at": "2020-01-01T00:00:00", "created_at": "2020-01-01T00:00:00"}
              for n in range(1500)]
    transport, sent = capped(lambda request: httpx.Response(200, json=orders))
    result = run({"type": "eguma", "api_key": "k-123456", "base_url": "http://eg.test/v1"}, transport)
    error = result.error or ""
    assert not result.ok and "test cap" not in error and "outside the window" in error and "\n" not in error
    assert "k-123456" not in error and len(sent) <= 4  # the windows asked at once (concurrency 4), no more


def test_a_server_cycling_over_the_same_pages_is_stopped_when_nothing_new_comes() -> None:
    pages = [[{"id": 1000 - 10 * p - n, "lines": [], "customer": None} for n in range(10)] for p in range(2)]
    transport, sent = capped(lambda request: httpx.Response(200, json=pages[int(request.url.params["page"]) % 2]))
    result = run({"type": "frontcore", "api_key": "k-123", "base_url": "http://fc.test/v2", "limit": 10,
                  "streams": ["orders"], "requests_per_second": None, "concurrency": 1}, transport)
    assert not result.ok and "test cap" not in (result.error or "") and "nothing new" in (result.error or "")
    # two new pages, five repeats, and the page after the last repeat (asked before that repeat was checked)
    assert len(sent) == 2 + 5 + 1 and result.orders.new == 20


class PageTwoFailsOnce(httpx.AsyncBaseTransport):
    """The in-process sandbox, except that page 2's first request waits for ``moment``, then a new order arrives
    (the newest comes first: every later row moves down by one) and page 2 fails (500), to be retried."""

    def __init__(self, fc: InProcess, moment: asyncio.Event) -> None:
        self.fc, self.moment, self.inner, self.failed = fc, moment, fc.transport(), False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        if page == "2" and not self.failed:
            self.failed = True
            await self.moment.wait()
            self.fc.sandbox.create_order({})
            return httpx.Response(500, json={"error": "busy"})
        return await self.answer(page, request)

    async def answer(self, page: str | None, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)


def test_read_ahead_loses_no_order_when_a_retried_page_is_overtaken_while_orders_arrive(store: Store) -> None:
    """Page 2 fails (500) after page 3 was answered; a new order arrives before page 2 is retried, which pushes
    page 2's last order onto page 3. Page 3 was read before the shift, so it must be read again."""
    fc = in_process("frontcore", orders=60, seed=8, api_key="k-123")
    before = {str(d["id"]) for d in fc.sandbox.store.find("orders")}
    page_3_answered = asyncio.Event()

    class Shifting(PageTwoFailsOnce):
        async def answer(self, page: str | None, request: httpx.Request) -> httpx.Response:
            response = await super().answer(page, request)
            if page == "3":
                page_3_answered.set()
            return response

    settings = fc.settings(limit=10, concurrency=3, streams=["orders"], max_retries=3)
    [result] = fc.sync(store, "c", settings, transport=Shifting(fc, page_3_answered))
    assert result.ok, result.error
    assert {r[0] for r in rows(store, "select order_id from orders")} == before  # the new order: next run
    fc.sync(store, "c", settings)
    assert {r[0] for r in rows(store, "select order_id from orders")} == {str(d["id"]) for d in
                                                                        fc.sandbox.store.find("orders")}


def test_read_ahead_loses_no_order_when_a_page_read_before_a_retry_arrives_after_it(store: Store) -> None:
    """Page 2 fails (500) once page 3 has been read, and a new order arrives before page 2 is retried; page 3's
    answer, read before the shift, reaches us only after the retried page 2. The answers arrived in page order, so
    only the order in which the requests were sent shows that page 3 must be read again."""
    fc = in_process("frontcore", orders=60, seed=8, api_key="k-123")
    before = {str(d["id"]) for d in fc.sandbox.store.find("orders")}
    page_3_read, page_2_answered = asyncio.Event(), asyncio.Event()

    class LateDelivery(PageTwoFailsOnce):
        async def answer(self, page: str | None, request: httpx.Request) -> httpx.Response:
            response = await super().answer(page, request)
            if page == "2":
                page_2_answered.set()
            if page == "3" and not page_3_read.is_set():
                page_3_read.set()
                await page_2_answered.wait()  # read now, delivered after the retried page 2
            return response

    settings = fc.settings(limit=10, concurrency=3, streams=["orders"], max_retries=3)
    [result] = fc.sync(store, "c", settings, transport=LateDelivery(fc, page_3_read))
    assert result.ok, result.error
    stored = {r[0] for r in rows(store, "select order_id from orders")}
    assert before <= stored, sorted(before - stored)


@pytest.mark.parametrize("late", [{"2"}, {"6"}, {"6", "7"}, {"1", "2", "3"}],
                         ids=lambda late: "late " + ",".join(sorted(late)))
def test_read_ahead_loses_no_order_when_the_server_answers_a_later_page_first_while_orders_arrive(
        store: Store, late: set[str]) -> None:
    """Pages 1 to 4 are asked at once (a first run, then a page whenever one is answered); the server is slow with
    the pages in ``late`` and answers the page after them first, and a new order arrives before it gets to them,
    which pushes every later row down by one. A page read before the shift whose predecessor was read after it
    would miss a row: it must be read again. No request failed, so the order in which the requests were sent says
    nothing here.

    * page 2 late: page 3 was asked with it, before page 1 was answered;
    * page 6 late: page 6 begins with page 5's last row (the list moved), and page 7 came first;
    * pages 6 and 7 late: page 7 shows no repeat itself, but the list has moved in this pass;
    * pages 1 to 3 late: nothing read shows the move, but page 4 was asked before page 1 was answered."""
    fc = in_process("frontcore", orders=120, seed=8, api_key="k-123")
    before = {str(d["id"]) for d in fc.sandbox.store.find("orders")}
    early_answered = asyncio.Event()
    created: list[bool] = []
    inner = fc.transport()

    class SlowPages(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            page = request.url.params.get("page")
            if page in late and not early_answered.is_set():
                await early_answered.wait()
                if not created:
                    created.append(True)
                    fc.sandbox.create_order({})  # the newest order comes first: every later row moves down by one
            response = await inner.handle_async_request(request)
            if page == str(max(int(p) for p in late) + 1):
                early_answered.set()
            return response

    settings = fc.settings(limit=10, concurrency=4, streams=["orders"], max_retries=0)
    [result] = fc.sync(store, "c", settings, transport=SlowPages())
    assert result.ok, result.error
    assert created
    stored = {r[0] for r in rows(store, "select order_id from orders")}
    assert before <= stored, sorted(before - stored)


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

    async def answer_until(self, consumer: asyncio.Future[None], answer: Callable[[Any], Any], newest_first: bool,
                           idle: Callable[[], None] = lambda: None) -> None:
        """``idle`` runs when no request waits (the caller is busy with what it has)."""
        while not consumer.done():
            for _ in range(20):
                await asyncio.sleep(0)
            live = [(q, f) for q, f in self.unanswered if not f.done()]
            self.most = max(self.most, len(live))
            if live:
                request, future = live[-1] if newest_first else live[0]
                future.set_result(answer(request))
            else:
                idle()
        await consumer


@pytest.mark.parametrize("spare", [0, 3])
def test_read_ahead_never_has_more_requests_unanswered_than_allowed_when_answers_come_out_of_order(spare: int) -> None:
    """A Keyset pass over one dense range with ``read_ahead`` 3: the server answers the newest request first, so
    answers wait for the ones before them; never more than 3 requests are unanswered; while the caller still
    stores the first page, the next 3 are already sent, and with ``spare`` that many more as answers arrive; every
    record comes once, in order."""
    from datetime import UTC, datetime, timedelta

    from ordersync.paging import Answer, Keyset, KeysetAt, Request, paginate

    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [{"id": f"r{n:03}", "created": start + timedelta(seconds=n)} for n in range(95)]

    def params(lo: datetime, hi: datetime, at: KeysetAt) -> dict[str, Any]:
        since = datetime.fromisoformat(at.since) if at.since else lo
        return {"from": since, "to": hi, "page": at.page, "start_index": at.start}

    keyset = Keyset("orders", params, [(start, start + timedelta(days=1))], key=str, id_of=lambda r: str(r["id"]),
                    created=lambda r: r["created"], stored={}, conditional=lambda _: {}, clamp=lambda v: v,
                    read_ahead=3, spare=spare)
    server = HeldAnswers()

    def answer(request: Request) -> Answer:
        q = request.params
        found = [r for r in records if q["from"] <= r["created"] <= q["to"]]
        offset = q["start_index"] - 1 if q["start_index"] else (q["page"] - 1) * 10
        return Answer(found[offset:offset + 10], page_size=10, total_items=len(found))

    async def main() -> tuple[list[str], int]:
        read: list[str] = []
        stored = asyncio.Event()  # the caller is still storing the first page until this is set
        ahead = 0

        async def consume() -> None:
            async for _at, step in paginate(server.fetch, keyset, keyset.start(None)):
                read.extend(str(r["id"]) for r in step.records or [])
                await stored.wait()

        def first_page_stored() -> None:
            nonlocal ahead
            if not stored.is_set():
                ahead = len(server.unanswered) - 1
                stored.set()

        await server.answer_until(asyncio.ensure_future(consume()), answer, newest_first=True,
                                  idle=first_page_stored)
        return read, ahead

    read, ahead = asyncio.run(main())
    assert read == [str(r["id"]) for r in records]
    assert server.most == 3 and ahead == 3 + spare


def test_a_step_to_a_position_nobody_guessed_is_sent_even_when_later_guesses_hold_every_slot() -> None:
    """``read_ahead`` 2 and 2 spare: page 2's answer frees a slot that page 4 takes at once; page 2's step then goes
    to page 9, which no guess predicted, while pages 3 and 4 (still predicted after 9) hold both slots. Page 9 is
    sent in page 4's place (page 4 waits for a slot again), never a third request at once."""
    from dataclasses import dataclass

    from ordersync.paging import Answer, PageAt, Request, Step, paginate

    after = {2: 9, 9: 3}  # the position after each page: 1, 2, 9, 3, 4, 5

    @dataclass
    class Jumping:
        read_ahead: int = 2
        spare: int = 2

        def start(self, saved: dict[str, Any] | None) -> PageAt:
            return PageAt(page=1)

        def request(self, at: PageAt) -> Request:
            return Request("/p", {"page": at.page})

        def guess(self, at: PageAt) -> PageAt | None:
            page = after[9] if at.page == 9 else at.page + 1  # never guesses 9
            return PageAt(page=page) if page <= 5 else None

        def step(self, at: PageAt, answer: Answer) -> Step[PageAt]:
            page = after.get(at.page, at.page + 1)
            return Step(answer.records, PageAt(page=page) if page <= 5 or page == 9 else None)

    server = HeldAnswers()

    async def main() -> list[int]:
        read: list[int] = []

        async def consume() -> None:
            paginator = Jumping()
            async for at, _step in paginate(server.fetch, paginator, paginator.start(None)):
                read.append(at.page)

        await server.answer_until(asyncio.ensure_future(consume()),
                                  lambda request: Answer([{"page": request.params["page"]}]), newest_first=False)
        return read

    read = asyncio.run(main())
    assert read == [1, 2, 9, 3, 4, 5] and server.most == 2


def test_the_requests_after_a_page_are_on_their_way_before_the_caller_works_on_it() -> None:
    """A caller works on each page without letting the event loop turn (parsing, normalizing, handing it to the
    writer). The requests for the next ``read_ahead`` pages must have left before that work starts: sent after it
    (or created but not yet started), each would add its whole round trip to the caller's time."""
    from ordersync.paging import Answer, PageNumber, Request, paginate

    paginator = PageNumber("orders", {}, size=10, read_ahead=3)
    started: list[int] = []  # pages whose request has begun its way to the server

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        started.append(page)
        await asyncio.sleep(0)  # the network
        return Answer([{"id": page * 100 + n} for n in range(10 if page < 6 else 4)])

    async def main() -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        async for at, step in paginate(fetch, paginator, paginator.start(None)):
            if step.next is not None:
                out.append((at.page, max(started)))  # what has left when the caller starts on this page
        return out

    seen = asyncio.run(main())
    assert [page for page, _ in seen] == [1, 2, 3, 4, 5]
    assert all(furthest >= page + 3 for page, furthest in seen), seen


def test_requests_launched_by_arriving_answers_are_on_their_way_before_the_caller_works_on_the_next_page() -> None:
    """``read_ahead`` 2 and 2 spare: an answer frees a connection for the next request, but it is only seen, and a
    request only travels (through the client, to the socket), while the event loop turns, and the caller works on
    each page without a pause. Before each page is handed over, the answers in meanwhile must be seen and the
    requests they free let reach the wire: then the full ``read_ahead`` + ``spare`` pages ahead are on their way,
    instead of each request waiting for the caller's work on top of its round trip."""
    from dataclasses import dataclass

    from ordersync.paging import Answer, PageNumber, Request, paginate

    @dataclass
    class Spare(PageNumber):
        spare: int = 2

    paginator = Spare("orders", {}, size=10, read_ahead=2)
    on_the_wire: list[int] = []

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        for _ in range(4):  # the client's hops before the request is on the socket
            await asyncio.sleep(0)
        on_the_wire.append(page)
        for _ in range(4):  # the network
            await asyncio.sleep(0)
        return Answer([{"id": page * 100 + n} for n in range(10 if page < 12 else 4)])

    async def main() -> list[tuple[int, int]]:
        return [(at.page, max(on_the_wire)) async for at, _step in paginate(fetch, paginator, paginator.start(None))]

    seen = asyncio.run(main())
    assert [page for page, _ in seen] == list(range(1, 13))
    assert all(furthest >= page + 4 for page, furthest in seen if 3 <= page <= 11), seen


def test_the_next_request_leaves_before_a_page_is_checked_and_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking a page (a loop that never ends) renders every record's ``raw``: milliseconds of work per page. The
    next page's request must be on its way before it, not wait for it on top of its round trip."""
    from ordersync import paging
    from ordersync.paging import Answer, PageNumber, Request, paginate

    events: list[str] = []
    check = paging.LoopGuard.check

    def checking(self: paging.LoopGuard, path: str, position: Any, answer: Answer, records: list[Any]) -> Any:
        events.append(f"check {position.page}")
        return check(self, path, position, answer, records)

    monkeypatch.setattr(paging.LoopGuard, "check", checking)
    paginator = PageNumber("orders", {}, size=10)  # one request at a time

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        events.append(f"send {page}")
        await asyncio.sleep(0)
        return Answer([{"id": page * 100 + n} for n in range(10 if page < 3 else 4)])

    async def main() -> None:
        async for _ in paginate(fetch, paginator, paginator.start(None)):
            pass

    asyncio.run(main())
    assert events == ["send 1", "send 2", "check 1", "send 3", "check 2", "check 3"]


def test_a_server_starting_over_after_a_long_list_is_stopped_when_nothing_new_comes() -> None:
    """The records read long ago are remembered too: a server that answers its first page again after 20,000
    records (more than the guard keeps in its set of latest digests) is stopped after five pages of repeats."""
    from ordersync.errors import ApiError
    from ordersync.paging import Answer, PageNumber, Request, paginate

    pages, size = 40, 500
    asked: list[int] = []

    async def fetch(request: Request) -> Answer:
        page = int(request.params["page"])
        asked.append(page)
        if page > 3 * pages:
            return Answer([])  # a guard that never stops would read on here: end the pass
        first = (page - 1) % pages * size  # page 41 is page 1 again
        return Answer([{"id": first + n, "total": "9.50"} for n in range(size)])

    async def main() -> None:
        paginator = PageNumber("orders", {}, size=size)
        async for _ in paginate(fetch, paginator, paginator.start(None)):
            pass

    with pytest.raises(ApiError, match="nothing new"):
        asyncio.run(main())
    assert max(asked) <= pages + 5 + 1  # five repeats, and the page asked before the last repeat was checked


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
