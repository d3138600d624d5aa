"""Firespring test helpers: a read-only sandbox shared by the package, raw API calls, a recording transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ordersync.config import parse_source
from ordersync.store import Store
from ordersync.sync import StreamResult, sync_source
from tests.support import InProcess, Router, Running, http, running

KEY = "sandbox-key"
ALL_INCLUDES = (
    "additional_information,billing_address,items,items.attributes,items.portal,items.print_ready_files,message,"
    "notes,payment_transactions,portal,promo_code,shipments,shipments.shipping_address,shipments.shipping_carrier,"
    "shipments.shipping_method,user"
)


@pytest.fixture(scope="package")
def shared() -> Iterator[Running]:
    """A sandbox that no test changes: 400 orders over three websites."""
    with running("firespring", orders=400, seed=11) as r:
        yield r


def api(r: Running | InProcess, path: str = "/websites/4/orders", key: str | None = KEY,
        headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    auth = (key, "") if key is not None else None
    with http() as client:
        return client.get(f"{r.url}{path}", params=params, auth=auth, headers=headers)


def fetch_all(r: Running | InProcess, website: int = 4, includes: str = ALL_INCLUDES) -> list[dict[str, Any]]:
    """Every order of a website, unfiltered, through the list endpoint (ascending by creation)."""
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api(r, f"/websites/{website}/orders", count=100, page=page, direction="asc", includes=includes).json()
        records += body["data"]
        if page >= body["meta"]["pagination"]["total_pages"]:
            return records
        page += 1


class Recorder(httpx.AsyncBaseTransport):
    """A real transport that remembers every request, and can fail one to simulate a crash: the ``fail_nth``
    request (counting from 1) among those ``counting`` accepts (by their query), answered 400 "crash"."""

    def __init__(self, fail_nth: int | None = None,
                 counting: Callable[[dict[str, str]], bool] = lambda _params: True) -> None:
        self.inner = Router()
        self.requests: list[httpx.Request] = []
        self.fail_nth, self.counting, self.counted = fail_nth, counting, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_nth is not None and self.counting(dict(request.url.params)):
            self.counted += 1
            if self.counted == self.fail_nth:
                return httpx.Response(400, json={"errors": [{"code": "boom", "source": "page", "detail": "crash"}]})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests]


def sync_recorded(store: Store, name: str, settings: dict[str, Any], recorder: Recorder,
                  full_refresh: bool = False) -> list[StreamResult]:
    """One sync through the real engine, with every request recorded."""
    parsed = parse_source(name, settings)
    return asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh, transport=recorder))
