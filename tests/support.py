"""Helpers every test uses: a real sandbox on 127.0.0.1, a real store, a sync run through the real engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ordersync import apis
from ordersync.config import parse_source
from ordersync.sandbox.app import Sandbox, SandboxOptions
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store
from ordersync.sync import StreamResult, sync_source

ANCHOR = datetime.fromisoformat("2026-06-15T00:00:00+00:00")


@dataclass
class Running:
    sandbox: Sandbox
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.base_url

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call one of the sandbox's ``/_sandbox`` control endpoints."""
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", json=json, timeout=30)
        response.raise_for_status()
        return response.json()

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Source settings that sync from this sandbox, fast (no client-side rate limit)."""
        base = self.sandbox.demo_settings(self.url)
        return {**base, "requests_per_second": 1000, "max_retries": 2, **overrides}


@contextmanager
def running(api: str, **options: Any) -> Iterator[Running]:
    """A sandbox on a thread-served socket; tests lift the vendor's rate limit unless they pass ``rate_limit``."""
    options.setdefault("anchor", ANCHOR)
    options.setdefault("rate_limit", False)
    sandbox = apis.get(api).sandbox(SandboxOptions(**options))
    server = start_in_thread(sandbox.app())
    try:
        yield Running(sandbox, server)
    finally:
        server.stop()


def sync(store: Store, name: str, settings: dict[str, Any], full_refresh: bool = False,
         transport: httpx.AsyncBaseTransport | None = None) -> list[StreamResult]:
    """One ``ordersync sync`` of one source, through the real engine and HTTP."""
    parsed = parse_source(name, settings)
    return asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh, transport=transport))


class Recording(httpx.AsyncBaseTransport):
    """A real HTTP transport that remembers every request it sent (URL, headers, time), to check what a client asks."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def params(self, path_end: str = "") -> list[httpx.QueryParams]:
        return [r.url.params for r in self.requests if r.url.path.endswith(path_end)]


def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql, params).all()]


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=30, **kwargs)
