"""A pre-rendered fast server: each API's records rendered once from its sandbox, pages served from memory.

The sandbox renders every page from SQLite (about 7,000 orders/s); a floor measured against it measures the
sandbox. Here every record is encoded once at start-up and a page is the concatenation of pre-encoded bytes, so the
client is the bottleneck. Paging and auth are honoured as far as ordersync's client and dlt's ``rest_api`` need:

* frontcore ``GET /v2/orders``: ``X-API-Key``, ``limit``, ``page``, ``since_id``, ``created_at_min`` /
  ``created_at_max`` (Oslo local time, ``[min, max)``); ids descending;
* eguma ``GET /v1/vouchers/orders.json``: ``apikey``, ``updated_at_after`` / ``updated_at_before`` (no paging);
* firespring ``GET /websites/4/orders``: Basic auth, ``count``, ``page``, ``date_start`` / ``date_end`` (UTC days,
  ``[start, end)``), ``direction``; envelope;
* prio ``POST /v3.4/distributor/oauth2/token`` and ``GET .../orders``: bearer token, ``order_created_from/to``,
  ``items_per_page`` (at most 100), ``page``; creation ascending; envelope.

Options: ``--latency-ms`` delays every answer; ``--rate N`` is a strict limiter (any 1-second sliding window holds
at most N accepted requests, the rest get 429 + Retry-After). ``GET /_fast/stats`` counts requests and 429s;
with ``--log`` it also lists every exchange (``latency_timeline.py`` reads it).

    python benchmarks/fastserver.py frontcore RECORDS.jsonl [--latency-ms 100] [--rate 5]
(prints ``http://127.0.0.1:PORT`` on its first line of output, then serves until terminated)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hashlib
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import FIRESPRING_WEBSITE, KEY, LISTINGS, PRIO_CLIENT, PRIO_PREFIX, Record  # noqa: E402

Answer = tuple[int, bytes, dict[str, str]]
TOKEN = "fast-server-token"


def render(api: str, orders: int, cache: Path, seed: int = 1) -> Path:
    """The sandbox's records for ``orders`` orders as JSON lines, rendered once through its own HTTP API and kept."""
    from ordersync.sandbox import load_sandbox
    from ordersync.sandbox.app import SandboxOptions
    from ordersync.sandbox.runner import start_in_thread

    cache.mkdir(parents=True, exist_ok=True)
    day, version = datetime.now(UTC).strftime("%Y%m%d"), generator_version(api)
    target = cache / f"{api}-{orders}-{seed}-{version}-{day}.jsonl"
    if target.exists():
        return target
    generate = orders * 2 if api == "firespring" else orders  # Firespring's orders spread over three websites
    data = cache / f"{api}-{generate}-{seed}-{version}.sqlite"
    sandbox = load_sandbox(api, SandboxOptions(orders=generate, seed=seed, api_key=KEY, rate_limit=False,
                                               data_path=str(data)))
    server = start_in_thread(sandbox.app())
    try:
        partial = target.with_suffix(".part")
        written = 0
        with partial.open("wb") as out:
            for page in LISTINGS[api](server.base_url):
                for record in page[:orders - written]:
                    out.write(orjson.dumps(record) + b"\n")
                written = min(orders, written + len(page))
        partial.rename(target)
    finally:
        server.stop()
    return target


def generator_version(api: str) -> str:
    """A fingerprint of the code that generates ``api``'s data (its sandbox folder and the shared helpers), part of
    the cached files' names: a sandbox keeps a data file's records as they are, so without it a cache rendered by
    an older generator would be served after the generator changed."""
    import ordersync.sandbox as package

    root = Path(package.__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*(root / api).glob("*.py"), root / "fake.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Api:
    """One API's records, pre-encoded, and the paging that serves them."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.encoded = [orjson.dumps(r) for r in records]

    @staticmethod
    def join(chunks: list[bytes]) -> bytes:
        return b"[" + b",".join(chunks) + b"]"

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        raise NotImplementedError


def _int(value: str | None, default: int) -> int:
    return int(value) if value else default


OSLO = ZoneInfo("Europe/Oslo")


def _oslo(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=OSLO).timestamp()


class Frontcore(Api):
    def __init__(self, records: list[Record]) -> None:
        records = sorted(records, key=lambda r: -int(r["id"]))
        super().__init__(records)
        self.neg_ids = [-int(r["id"]) for r in records]
        by_creation = sorted(range(len(records)), key=lambda n: (_utc(records[n]["created_at"]), n))
        self.by_creation = by_creation  # positions in the id-descending list, by creation time
        self.created = [_utc(records[n]["created_at"]) for n in by_creation]

    def selected(self, query: dict[str, str]) -> list[bytes]:
        """The records ``created_at_min`` / ``created_at_max`` and ``since_id`` leave, ids descending."""
        lo = bisect.bisect_left(self.created, _oslo(query["created_at_min"])) if query.get("created_at_min") else 0
        hi = bisect.bisect_left(self.created, _oslo(query["created_at_max"])) if query.get("created_at_max") \
            else len(self.created)
        # ids above since_id: a prefix of the descending list
        since = query.get("since_id")
        above = bisect.bisect_left(self.neg_ids, -int(since)) if since else len(self.encoded)
        if lo == 0 and hi == len(self.created):  # no creation bound that leaves anything out
            return self.encoded[:above]
        positions = sorted(self.by_creation[lo:hi])  # by id, descending
        positions = positions[:bisect.bisect_left(positions, above)]
        return [self.encoded[n] for n in positions]

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path != "/v2/orders":
            return 404, b'{"error": "not found"}', {}
        if headers.get("x-api-key") != KEY:
            return 401, b'{"error": "Unauthorized"}', {}
        limit = min(_int(query.get("limit"), 75), 250)
        page = _int(query.get("page"), 1)
        selected = self.selected(query)
        lo = min((page - 1) * limit, len(selected))
        return 200, self.join(selected[lo:lo + limit]), {}


class Eguma(Api):
    def __init__(self, records: list[Record]) -> None:
        records = sorted(records, key=lambda r: r["updated_at"])
        super().__init__(records)
        self.times = [r["updated_at"][:19] for r in records]

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path != "/v1/vouchers/orders.json":
            return 404, b"Not found", {}
        if query.get("apikey") != KEY:
            return 401, b"Unauthorized: invalid API key", {}
        lo = bisect.bisect_left(self.times, query["updated_at_after"]) if query.get("updated_at_after") else 0
        hi = bisect.bisect_left(self.times, query["updated_at_before"]) if query.get("updated_at_before") else None
        return 200, self.join(self.encoded[lo:hi]), {}


class Firespring(Api):
    def __init__(self, records: list[Record]) -> None:
        records = sorted(records, key=lambda r: (_utc(r["date_created"]), r["id"]))
        super().__init__(records)
        self.days = [r["date_created"][:10] for r in records]
        self.auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path != f"/websites/{FIRESPRING_WEBSITE}/orders":
            return 404, b'{"errors": [{"code": "not_found"}]}', {}
        if headers.get("authorization") != self.auth:
            return 401, b'{"errors": [{"code": "unauthorized"}]}', {}
        count = min(_int(query.get("count"), 100), 100)
        page = _int(query.get("page"), 1)
        start = bisect.bisect_left(self.days, query["date_start"]) if query.get("date_start") else 0
        end = bisect.bisect_left(self.days, query["date_end"]) if query.get("date_end") else len(self.encoded)
        total = max(0, end - start)
        lo, hi = min((page - 1) * count, total), min(page * count, total)
        if query.get("direction", "desc") == "desc":  # the newest first: the same slice counted from the end
            data = self.encoded[end - hi:end - lo][::-1]
        else:
            data = self.encoded[start + lo:start + hi]
        pagination = {"total": total, "count": len(data), "per_page": count, "current_page": page,
                      "total_pages": -(-total // count)}
        body = b'{"object":"list","data":' + self.join(data) + b',"meta":{"pagination":' + orjson.dumps(pagination)
        return 200, body + b"}}", {}


class Prio(Api):
    def __init__(self, records: list[Record]) -> None:
        records = sorted(records, key=lambda r: (_utc(r["order_created"]), r["order_reference"]))
        super().__init__(records)
        self.created = [_utc(r["order_created"]) for r in records]
        self.basic = "Basic " + base64.b64encode(f"{PRIO_CLIENT}:{KEY}".encode()).decode()

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if path == f"{PRIO_PREFIX}/oauth2/token" and method == "POST":
            # Basic header (the documented way) or client_id/client_secret in a form body (dlt's way): both pass.
            token = orjson.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
            return 200, token, {}
        if path != f"{PRIO_PREFIX}/orders":
            return 404, b'{"error": "not found"}', {}
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, b'{"error_code": "invalid_token"}', {}
        lo = bisect.bisect_left(self.created, _utc(query["order_created_from"])) \
            if query.get("order_created_from") else 0
        hi = bisect.bisect_right(self.created, _utc(query["order_created_to"])) \
            if query.get("order_created_to") else len(self.created)
        per_page = min(_int(query.get("items_per_page"), 10), 100)
        page = _int(query.get("page"), 1)
        offset = _int(query.get("start_index"), (page - 1) * per_page + 1) - 1
        total = max(hi - lo, 0)
        items = self.encoded[lo + offset:min(lo + offset + per_page, hi)]
        meta = {"current_item_count": len(items), "items_per_page": per_page, "kind": "order",
                "page_index": offset // per_page + 1, "start_index": offset + 1, "total_items": total,
                "total_pages": -(-total // per_page)}
        body = b'{"api_version":"3.4.0","data":{"items":' + self.join(items) + b"," + orjson.dumps(meta)[1:] + b"}"
        return 200, body, {"last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}


KINDS: dict[str, Callable[[list[Record]], Api]] = {
    "frontcore": Frontcore, "eguma": Eguma, "firespring": Firespring, "prio": Prio}


class Server(asyncio.Protocol):
    """HTTP/1.1 with keep-alive on a raw asyncio protocol: one ``write`` per answer, ``TCP_NODELAY``, no framework
    between the socket and the pre-encoded bytes. Latency, the strict limiter and the counters live here."""

    def __init__(self, api: Api, latency_ms: float, rate: float | None, stats: dict[str, Any],
                 accepted: deque[float]) -> None:
        self.api, self.latency, self.rate = api, latency_ms / 1000, rate
        self.stats, self.accepted = stats, accepted
        self.buffer = b""
        self.queue: asyncio.Queue[tuple[str, str, dict[str, str]]] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task[None] | None = None
        self.arrived = 0.0  # when the request being answered came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.worker = asyncio.get_running_loop().create_task(self.serve())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self.queue.put_nowait((method, target, headers))

    async def serve(self) -> None:
        while True:
            method, target, headers = await self.queue.get()
            path, _, query_string = target.partition("?")
            status, body, extra = await self.answer(method, path, query_string, headers)
            head = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}", "content-type: application/json",
                    f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in extra.items())]
            assert self.transport is not None
            self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            if "exchanges" in self.stats and path != "/_fast/stats":  # --log: when each request came, its answer left
                self.stats["exchanges"].append((self.arrived, time.monotonic(), id(self)))
            if path != "/_fast/stats":
                self.stats["bytes"] += len(body)
                self.stats["largest"] = max(self.stats["largest"], len(body))

    async def answer(self, method: str, path: str, query_string: str, headers: dict[str, str]) -> Answer:
        if path == "/_fast/stats":
            return 200, orjson.dumps(self.stats), {}
        now = self.arrived = time.monotonic()
        self.stats["requests"] += 1
        self.stats["first"] = self.stats["first"] or now
        self.stats["last"] = now
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.limited():
            self.stats["429"] += 1
            return 429, b'{"error": "Too many requests"}', {"retry-after": "1"}
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        return self.api.answer(method, path, query, headers)

    def limited(self) -> bool:
        """Strict: at most ``rate`` accepted requests in any 1-second window."""
        now = time.monotonic()
        while self.accepted and now - self.accepted[0] >= 1.0:
            self.accepted.popleft()
        if self.rate is not None and len(self.accepted) >= self.rate:
            return True
        self.accepted.append(now)
        self.stats["max_in_window"] = max(self.stats["max_in_window"], len(self.accepted))
        return False


async def serve(api: Api, latency_ms: float, rate: float | None, log: bool = False) -> None:
    stats: dict[str, Any] = {"requests": 0, "429": 0, "first": None, "last": None, "max_in_window": 0, "bytes": 0,
                             "largest": 0, **({"exchanges": []} if log else {})}
    accepted: deque[float] = deque()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Server(api, latency_ms, rate, stats, accepted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("api", choices=sorted(KINDS))
    parser.add_argument("records", type=Path)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--log", action="store_true", help="stats also list each exchange: (request came, answer "
                        "left, connection)")
    args = parser.parse_args()
    records = [orjson.loads(line) for line in args.records.read_bytes().splitlines() if line]
    asyncio.run(serve(KINDS[args.api](records), args.latency_ms, args.rate, args.log))


if __name__ == "__main__":
    main()
