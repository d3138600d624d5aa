"""What the e-guma tests share: a transport that records every request and answer, and a pinned client clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from ordersync.apis.eguma import localtime
from ordersync.config import parse_source
from ordersync.store import Store
from ordersync.sync import StreamResult, sync_source
from tests.support import Router

FMT = "%Y-%m-%dT%H:%M:%S"


@dataclass
class Exchange:
    params: dict[str, str]
    status: int
    body: Any


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Wraps the real transport: the requests are sent over loopback as usual, and kept here."""

    inner: httpx.AsyncBaseTransport = field(default_factory=Router)
    exchanges: list[Exchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        try:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
        except (httpx.HTTPError, asyncio.CancelledError) as exc:  # cancelled: the client's own time-out
            self.errors.append(type(exc).__name__)
            raise
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = content.decode("utf-8", "replace")
        self.exchanges.append(Exchange(params, response.status_code, body))
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    async def aclose(self) -> None:
        await self.inner.aclose()


def sync_recorded(store: Store, name: str, settings: dict[str, Any], full_refresh: bool = False,
                  recorder: Recorder | None = None) -> tuple[list[StreamResult], Recorder]:
    recorder = recorder or Recorder()
    # one request at a time unless a test asks otherwise: the recorded exchanges are then the windows in the order
    # they were asked (newest first, see accepted_windows)
    parsed = parse_source(name, {"concurrency": 1, **settings})
    results = asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh, transport=recorder))
    return results, recorder


def pin_client_clock(monkeypatch: pytest.MonkeyPatch, iso: str) -> None:
    """The client's "now" (windows end there, minus the look-back)."""
    moment = datetime.fromisoformat(iso)
    monkeypatch.setattr(localtime, "utc_now", lambda: moment)


def local(value: str) -> datetime:
    """A documented local timestamp, read as the documentation writes it."""
    return datetime.strptime(value, FMT)


def accepted_windows(exchanges: list[Exchange]) -> list[Exchange]:
    """The windows whose answers were kept, in the order of the axis: those holding no other window asked (a window
    refused for its size or its time is asked again in parts, all inside it; windows are asked newest first)."""
    def bounds(ex: Exchange) -> tuple[datetime, datetime]:
        return local(ex.params["updated_at_after"]), local(ex.params["updated_at_before"])

    kept = [ex for ex in exchanges
            if not any(other is not ex and bounds(ex)[0] <= bounds(other)[0] and bounds(other)[1] <= bounds(ex)[1]
                       and bounds(other) != bounds(ex) for other in exchanges)]
    return sorted(kept, key=lambda ex: bounds(ex)[0])
