"""A vendor whose order list moves while it is read, and a transport that decides when each answer is computed.

Independent of the sandboxes: a few lines per API of what its documentation says about filters, order and paging,
over one list of orders that a schedule changes between any two steps: new orders (at the head, ids rising),
updates (a new version, a new modification time), deletions. The :class:`Scheduled` transport holds every request;
the schedule picks, step by step, whether to change the list, to *compute* the answer of one request held (from the
list as it is at that moment), to *deliver* one computed answer (in any order), or to fail one request with a 503 or
a 429. So the moment a server reads its data and the moment its answer arrives are both the schedule's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

OSLO, ZURICH = ZoneInfo("Europe/Oslo"), ZoneInfo("Europe/Zurich")


@dataclass
class Order:
    id: int
    created: datetime
    modified: datetime | None  # None: never updated (Frontcore's ``updated_at: null``)
    version: int = 1


@dataclass
class World:
    """The vendor's list of orders; every change is stamped with the vendor's clock (real time, whole seconds)."""

    orders: dict[int, Order] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    recent: list[int] = field(default_factory=list)  # the ids of the answer computed last: what a reader has seen
    next_id: int = 100000

    @classmethod
    def seeded(cls, count: int, seed: int) -> World:
        world = cls(rng=random.Random(seed))
        now = _now()
        moments = sorted(now - timedelta(seconds=world.rng.randint(60, 40 * 86400)) for _ in range(count))
        # bursts: orders sharing one second, more than a page, so that a slice of one second (one day for
        # Firespring) is read over several pages, where a deletion between two pages would shift them
        for burst in world.rng.sample(moments, 3):
            moments += [burst] * world.rng.randint(6, 12)
        for n, created in enumerate(sorted(moments)):
            world.orders[100000 + n] = Order(100000 + n, created, None if n % 3 else created + timedelta(seconds=30))
        world.next_id = max(world.orders) + 1  # above every id ever given, deleted ones too
        return world

    def insert(self) -> None:
        new = self.next_id  # ids are never reused, not even those of the newest orders once deleted
        self.next_id += 1
        self.orders[new] = Order(new, _now(), None)

    def _pick(self, pick: int) -> int | None:
        """An order to change: every other pick one the reader has just seen (a change behind the reader's
        position is what shifts the pages after it), else any."""
        seen = [i for i in self.recent if i in self.orders]
        among = seen if seen and pick % 2 else sorted(self.orders)
        return among[(pick // 2) % len(among)] if among else None

    def update(self, pick: int) -> None:
        if (ident := self._pick(pick)) is not None:
            self.orders[ident].version += 1
            self.orders[ident].modified = _now()

    def delete(self, pick: int) -> None:
        if (ident := self._pick(pick)) is not None:
            del self.orders[ident]

    def snapshot(self) -> dict[int, tuple[int, datetime]]:
        return {o.id: (o.version, o.created) for o in self.orders.values()}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _local(value: str | None, zone: ZoneInfo) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _page(items: list[Any], page: int, size: int) -> list[Any]:
    return items[(page - 1) * size:page * size]


# --- what each API documents, over the world -------------------------------------------------------------------
def frontcore(world: World, request: httpx.Request) -> httpx.Response:
    """``GET /v2/orders``: descending ids; ``since_id`` (greater than), ``*_min`` at or after, ``*_max`` before."""
    q = request.url.params
    since = int(q.get("since_id", 0))
    lo, hi = _local(q.get("created_at_min"), OSLO), _local(q.get("created_at_max"), OSLO)
    changed = _local(q.get("updated_at_min"), OSLO)
    found = [o for o in sorted(world.orders.values(), key=lambda o: -o.id) if o.id > since
             and (lo is None or o.created >= lo) and (hi is None or o.created < hi)
             and (changed is None or (o.modified is not None and o.modified >= changed))]
    body = [{"id": o.id, "created_at": o.created.astimezone(OSLO).isoformat(),
             "updated_at": o.modified.astimezone(OSLO).isoformat() if o.modified else None,
             "version": o.version, "lines": [], "customer": None}
            for o in _page(found, int(q.get("page", 1)), int(q.get("limit", 75)))]
    return httpx.Response(200, json=body)


def firespring(world: World, request: httpx.Request) -> httpx.Response:
    """``GET /websites/4/orders``: ``date_start`` at or after that day (UTC), ``date_end`` before it; sorted by
    ``date_created`` in ``direction``; ``meta.pagination`` announces the total."""
    q = request.url.params
    lo = datetime.fromisoformat(q["date_start"]).replace(tzinfo=UTC) if q.get("date_start") else None
    hi = datetime.fromisoformat(q["date_end"]).replace(tzinfo=UTC) if q.get("date_end") else None
    found = sorted((o for o in world.orders.values() if (lo is None or o.created >= lo) and
                    (hi is None or o.created < hi)), key=lambda o: (o.created, o.id),
                   reverse=q.get("direction", "desc") == "desc")
    size, page = int(q.get("count", 100)), int(q.get("page", 1))
    data = [{"id": o.id, "date_created": o.created.isoformat(), "status": "new", "version": o.version}
            for o in _page(found, page, size)]
    pagination = {"total": len(found), "count": len(data), "per_page": size, "current_page": page,
                  "total_pages": max(1, -(-len(found) // size))}
    return httpx.Response(200, json={"data": data, "meta": {"pagination": pagination}})


def eguma(world: World, request: httpx.Request) -> httpx.Response:
    """``GET /v1/vouchers/orders.json``: every order whose ``updated_at`` (= ``created_at`` until it changes) is in
    ``[updated_at_after, updated_at_before)``, Zurich time without a zone; no pages."""
    q = request.url.params
    lo, hi = _local(q.get("updated_at_after"), ZURICH), _local(q.get("updated_at_before"), ZURICH)

    def stamp(moment: datetime) -> str:
        return moment.astimezone(ZURICH).replace(tzinfo=None).isoformat()

    body = [{"id": f"00000000-0000-4000-8000-{o.id:012d}", "created_at": stamp(o.created),
             "updated_at": stamp(o.modified or o.created), "status": "completed", "version": o.version}
            for o in world.orders.values()
            if (lo is None or (o.modified or o.created) >= lo) and (hi is None or (o.modified or o.created) < hi)]
    return httpx.Response(200, json=body)


def prio(world: World, request: httpx.Request) -> httpx.Response:
    """``POST oauth2/token`` and ``GET orders``: creation range (inclusive), ``order_modified`` (after), sorted by
    creation ascending, ``items_per_page`` and ``page``; ``If-Modified-Since`` answers 304 when nothing matching
    changed since."""
    if request.method == "POST":
        return httpx.Response(200, json={"access_token": "t0k3n-abc", "token_type": "Bearer", "expires_in": 3600})
    q = request.url.params
    lo, hi = _local(q.get("order_created_from"), ZURICH), _local(q.get("order_created_to"), ZURICH)
    after = _local(q.get("order_modified"), ZURICH)
    found = sorted((o for o in world.orders.values() if (lo is None or o.created >= lo) and
                    (hi is None or o.created <= hi) and (after is None or (o.modified or o.created) >= after)),
                   key=lambda o: (o.created, o.id))
    since = request.headers.get("if-modified-since")
    latest = max(((o.modified or o.created) for o in found), default=None)
    if since and (latest is None or latest <= datetime.strptime(since, "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=UTC)):
        return httpx.Response(304)
    size, page = int(q.get("items_per_page", 10)), int(q.get("page", 1))
    items = [{"order_reference": str(o.id), "order_created": o.created.isoformat(timespec="milliseconds"),
              "order_modified": (o.modified or o.created).isoformat(timespec="milliseconds"),
              "order_status": "ORDER_CONFIRMED", "version": o.version} for o in _page(found, page, size)]
    headers = {"Last-Modified": latest.strftime("%a, %d %b %Y %H:%M:%S GMT")} if latest else {}
    data = {"items": items, "current_item_count": len(items), "items_per_page": size, "page_index": page,
            "total_items": len(found), "total_pages": max(1, -(-len(found) // size))}
    return httpx.Response(200, json={"data": data}, headers=headers)


VENDORS: dict[str, Callable[[World, httpx.Request], httpx.Response]] = {
    "frontcore": frontcore, "firespring": firespring, "eguma": eguma, "prio": prio}

SETTINGS: dict[str, dict[str, Any]] = {
    "frontcore": {"type": "frontcore", "api_key": "k-moving-1", "base_url": "http://fc.test/v2", "limit": 5,
                  "streams": ["orders"], "sweep_days": 0},
    "firespring": {"type": "firespring", "api_key": "k-moving-1", "base_url": "http://fs.test", "website_id": 4,
                   "count": 5, "date_start": "2000-01-01", "sweep_days": 0, "lookback_days": 60},
    "eguma": {"type": "eguma", "api_key": "k-moving-1", "base_url": "http://eg.test/v1", "split_threshold": 10,
              "window_days": 2, "start_date": "2020-01-01T00:00:00"},
    "prio": {"type": "prio", "client_id": "c-moving", "client_secret": "s-moving-1",
             "base_url": "http://prio.test/v3.4/distributor", "items_per_page": 5, "window_days": 20,
             "order_created_from": (_now() - timedelta(days=60)).isoformat()},
}


def version_of(api: str, raw: dict[str, Any]) -> tuple[int, int]:
    """An order's id and version from its stored ``raw``."""
    key = {"frontcore": "id", "firespring": "id", "eguma": "id", "prio": "order_reference"}[api]
    ident = raw[key]
    return (int(ident.rsplit("-", 1)[-1]) if isinstance(ident, str) else int(ident)), int(raw["version"])


# --- when answers are computed and delivered: the schedule's choice ----------------------------------------------
@dataclass
class Held:
    request: httpx.Request
    answer: asyncio.Future[httpx.Response]
    computed: httpx.Response | None = None


class Scheduled(httpx.AsyncBaseTransport):
    """Holds every request until the schedule computes and delivers its answer.

    ``steps`` is the schedule: each number picks one action (see :meth:`step`). When it runs out, the transport
    answers in order, as a plain server would. ``deletes`` allows deletions among the changes."""

    FAILURES = 2  # at most this many failures per URL: the client retries more often than that

    def __init__(self, api: str, world: World, steps: list[int], deletes: bool) -> None:
        self.api, self.world, self.steps, self.deletes = api, world, list(steps), deletes
        self.held: list[Held] = []
        self.failed: dict[str, int] = {}  # failures so far by URL: a retry is another request for the same URL
        self.wake = asyncio.Event()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.method == "POST" and self.api == "prio":  # a token is no page: answered at once
            return VENDORS[self.api](self.world, request)
        held = Held(request, asyncio.get_running_loop().create_future())
        self.held.append(held)
        self.requests += 1
        self.wake.set()
        return await held.answer

    async def drive(self, done: asyncio.Future[Any]) -> None:
        """Run the schedule while the sync runs: one action each time the event loop has turned."""
        while not done.done():
            if not self.held:
                self.wake.clear()
                waiting = asyncio.ensure_future(self.wake.wait())
                await asyncio.wait([waiting, done], return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                continue
            self.step()
            for _ in range(3):
                await asyncio.sleep(0)

    def step(self) -> None:
        action = self.steps.pop(0) if self.steps else None
        pending = [h for h in self.held if h.computed is None]
        ready = [h for h in self.held if h.computed is not None]
        if action is None:  # the schedule ran out: compute and deliver the oldest
            held = self.held[0]
            self._deliver(held, held.computed or self.compute(held.request))
            return
        kind, pick = action % 8, action // 8
        if kind == 0:
            self.world.insert()
        elif kind == 1:
            self.world.update(pick)
        elif kind == 2 and self.deletes:
            self.world.delete(pick)
        elif kind in (3, 4) and pending:  # the server reads its data for one request now
            held = pending[pick % len(pending)]
            held.computed = self.compute(held.request)
        elif kind == 5 and ready:  # and sends one answer it computed, in any order
            self._deliver(ready[pick % len(ready)], ready[pick % len(ready)].computed)
        elif kind in (6, 7) and pending:
            held = pending[pick % len(pending)]
            url = str(held.request.url)
            if self.failed.get(url, 0) < self.FAILURES:
                self.failed[url] = self.failed.get(url, 0) + 1
                status = 503 if kind == 6 else 429
                self._deliver(held, httpx.Response(status, headers={"Retry-After": "0"}, json=_error(self.api)))

    def compute(self, request: httpx.Request) -> httpx.Response:
        response = VENDORS[self.api](self.world, request)
        if response.status_code == 200:
            self.world.recent = _ids(self.api, response.json())
        return response

    def _deliver(self, held: Held, response: httpx.Response | None) -> None:
        self.held.remove(held)
        if not held.answer.done():
            held.answer.set_result(response or httpx.Response(500))


def _ids(api: str, body: Any) -> list[int]:
    records = body if isinstance(body, list) else (body.get("data") or {})
    records = records.get("items", []) if isinstance(records, dict) else records
    return [version_of(api, r)[0] for r in records]


def _error(api: str) -> Any:
    return {"errors": [{"code": "busy", "source": "", "detail": "try again"}]} if api == "firespring" else \
        {"error": "busy"}


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def dumps(value: Any) -> str:
    return json.dumps(value)
