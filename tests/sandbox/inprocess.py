"""Calling a sandbox in-process (httpx over ASGI, no socket): fast enough to hammer it in a unit test."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Any

import httpx

from ordersync import apis
from ordersync.sandbox.app import Sandbox, SandboxOptions

ANCHOR = datetime.fromisoformat("2026-06-15T00:00:00+00:00")


class InProcess:
    """One sandbox and its app; ``get``/``post`` answer synchronously."""

    def __init__(self, api: str, **options: Any) -> None:
        options.setdefault("anchor", ANCHOR)
        options.setdefault("orders", 40)
        self.sandbox: Sandbox = apis.get(api).load_sandbox(SandboxOptions(**options))
        self.app = self.sandbox.app()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def burst(self, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
        """GET requests ``(path, kwargs)`` sent at once: they all arrive within one rate-limit window."""

        async def call() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
                return list(await asyncio.gather(*(client.get(path, **kw) for path, kw in requests)))

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth(api: InProcess) -> dict[str, Any]:
    """The documented credentials of ``api``, as request keyword arguments."""
    sandbox = api.sandbox
    key = sandbox.options.api_key
    if sandbox.name == "frontcore":
        return {"headers": {"X-API-Key": key}}
    if sandbox.name == "eguma":
        return {"params": {"apikey": key}}
    if sandbox.name == "firespring":
        return {"headers": {"Authorization": basic(key)}}
    token = api.post("/v3.4/distributor/oauth2/token", json={"grant_type": "client_credentials"},
                     headers={"Authorization": basic(sandbox.client_id, sandbox.client_secret)}).json()
    return {"headers": {"Authorization": f"Bearer {token['access_token']}"}}


LIST_PATHS = {"frontcore": "/v2/orders", "eguma": "/v1/vouchers/orders.json", "firespring": "/websites/4/orders",
              "prio": "/v3.4/distributor/orders"}
