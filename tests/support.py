"""Helpers every test uses: a sandbox (in-process, or on 127.0.0.1 where a socket matters), a real store, a sync
run through the real engine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ordersync.config import parse_source
from ordersync.progress import Silent
from ordersync.sandbox import load_sandbox
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
    sandbox = load_sandbox(api, SandboxOptions(**options))
    server = start_in_thread(sandbox.app())
    try:
        yield Running(sandbox, server)
    finally:
        server.stop()


_IN_PROCESS: dict[str, Any] = {}  # host -> ASGI app of the in-process sandboxes alive now


class Router(httpx.AsyncBaseTransport):
    """In-process sandboxes (``http://<name>.sandbox.test``) through ``httpx.ASGITransport``; the rest over the
    network. Every helper below sends through one, so a test picks in-process or a real socket by its sandbox."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = _IN_PROCESS.get(request.url.host)
        if app is None:
            return await self.network.handle_async_request(request)
        return await httpx.ASGITransport(app=app).handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()


class SyncRouter(httpx.BaseTransport):
    """:class:`Router` for synchronous helpers (``httpx.get`` style calls from a test, outside any event loop)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            router = Router()
            try:
                response = await router.handle_async_request(request)
                content = await response.aread()
            finally:
                await router.aclose()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(send())


def http() -> httpx.Client:
    """A synchronous client that reaches in-process sandboxes as well as real ones."""
    return httpx.Client(transport=SyncRouter(), timeout=30)


@dataclass
class InProcess:
    """A sandbox called in-process through ``httpx.ASGITransport``: no socket, no server thread. It offers what
    :class:`Running` offers (``url``, ``settings``, ``control``), so a test changes one line to use it."""

    sandbox: Sandbox
    host: str = ""

    def __post_init__(self) -> None:
        self.app = self.sandbox.app()
        self.host = f"{self.sandbox.name}-{id(self)}.sandbox.test"

    def __enter__(self) -> InProcess:
        _IN_PROCESS[self.host] = self.app  # helpers that take a URL (``get``, ``sync``) reach it while open
        return self

    def __exit__(self, *exc: object) -> None:
        _IN_PROCESS.pop(self.host, None)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self.app)

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call one of the sandbox's ``/_sandbox`` control endpoints."""

        async def call() -> Any:
            async with httpx.AsyncClient(transport=self.transport(), base_url=self.url) as client:
                response = await client.request(method, f"/_sandbox/{path}", json=json)
                response.raise_for_status()
                return response.json()

        return asyncio.run(call())

    def settings(self, **overrides: Any) -> dict[str, Any]:
        base = self.sandbox.demo_settings(self.url)
        return {**base, "requests_per_second": None, "max_retries": 2, **overrides}

    def sync(self, store: Store, name: str, settings: dict[str, Any], full_refresh: bool = False,
             transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> list[StreamResult]:
        parsed = parse_source(name, settings)
        return asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh,
                                       transport=transport or self.transport(), **kwargs))


def in_process(api: str, **options: Any) -> InProcess:
    """A sandbox called in-process; tests lift the vendor's rate limit unless they pass ``rate_limit``."""
    options.setdefault("anchor", ANCHOR)
    options.setdefault("rate_limit", False)
    return InProcess(load_sandbox(api, SandboxOptions(**options)))


def sync(store: Store, name: str, settings: dict[str, Any], full_refresh: bool = False,
         transport: httpx.AsyncBaseTransport | None = None) -> list[StreamResult]:
    """One ``ordersync sync`` of one source, through the real engine and HTTP."""
    parsed = parse_source(name, settings)
    return asyncio.run(sync_source(store, name, parsed, full_refresh=full_refresh, transport=transport or Router()))


class Recording(httpx.AsyncBaseTransport):
    """A real HTTP transport that remembers every request it sent and the status answered."""

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

    def params(self, path_end: str = "") -> list[httpx.QueryParams]:
        return [r.url.params for r in self.requests if r.url.path.endswith(path_end)]


def rows(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql, params).all()]


def get(url: str, **kwargs: Any) -> httpx.Response:
    with http() as client:
        return client.get(url, **kwargs)


class StopAfterPages(Silent):
    """A progress reporter that asks the sync to stop (``stop``, as SIGTERM does) once ``pages`` pages are stored."""

    def __init__(self, pages: int, stop: threading.Event) -> None:
        self.left = pages
        self.stop = stop

    def advanced(self, source: str, stream: str, records: int) -> None:
        self.left -= 1
        if self.left <= 0:
            self.stop.set()


async def read_request_head(reader: asyncio.StreamReader) -> bool:
    """Read one HTTP request's head off a raw socket (for servers that misbehave on purpose); False at its end."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(65536)
        if not chunk:
            return False
        head += chunk
    return True
