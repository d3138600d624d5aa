"""Helpers of the Prio tests: raw API calls with a token, a recording transport, a sync with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from ordersync.config import parse_source
from ordersync.store import Store
from ordersync.sync import StreamResult, sync_source
from tests.support import Router, Running, http

BASE = "/v3.4/distributor"
WIDE = {"order_created_from": "2000-01-01T00:00:00+00:00", "order_created_to": "2100-01-01T00:00:00+00:00"}


def token(r: Running) -> str:
    with http() as client:
        answer = client.post(f"{r.url}{BASE}/oauth2/token", auth=(r.sandbox.client_id, r.sandbox.client_secret),  # type: ignore[attr-defined]
                        json={"grant_type": "client_credentials"}, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def api_get(r: Running, params: dict[str, Any] | None = None, tok: str | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
    auth = {"Authorization": f"Bearer {tok or token(r)}"}
    with http() as client:
        return client.get(f"{r.url}{BASE}/orders", params=params, headers={**auth, **(headers or {})})


def fetch_all(r: Running, **params: Any) -> list[dict[str, Any]]:
    """Every order matching ``params`` (wide creation range unless given), page by page."""
    tok = token(r)
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = api_get(r, {**WIDE, **params, "items_per_page": 100, "page": page}, tok)
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        found += data["items"]
        if page >= data["total_pages"]:
            return found
        page += 1


def refs(orders: list[dict[str, Any]]) -> set[str]:
    return {o["order_reference"] for o in orders}


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the network and keeps them, so tests can check what the client sent."""

    def __init__(self) -> None:
        self.inner = Router()
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def orders_requests(self) -> list[httpx.Request]:
        return [q for q in self.requests if q.url.path.endswith("/orders")]


def run(store: Store, name: str, settings: dict[str, Any], recorder: Recorder | None = None,
        full_refresh: bool = False) -> list[StreamResult]:
    parsed = parse_source(name, settings)
    return asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh, transport=recorder or Router()))
