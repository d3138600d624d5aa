"""Calling a sandbox in-process (httpx over ASGI, no socket), synchronously: fast enough to hammer it in a test.

Built on :class:`tests.support.InProcess`; unlike :func:`tests.support.in_process` it keeps the vendor's rate limit
unless a test lifts it, since these tests check the vendor's own behaviour.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx

from ordersync.sandbox import load_sandbox, registry
from ordersync.sandbox.app import SandboxOptions
from tests import support
from tests.support import ANCHOR


class InProcess(support.InProcess):
    """One sandbox and its app; ``get``/``post`` answer synchronously."""

    def __init__(self, api: str, **options: Any) -> None:
        options.setdefault("anchor", ANCHOR)
        options.setdefault("orders", 40)
        super().__init__(load_sandbox(api, SandboxOptions(**options)))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), base_url="http://sandbox")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with self.client() as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def burst(self, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
        """GET requests ``(path, kwargs)`` sent at once: they all arrive within one rate-limit window."""

        async def call() -> list[httpx.Response]:
            async with self.client() as client:
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
    if sandbox.name != "prio":
        raise AssertionError(f"auth() does not know the credentials of the API '{sandbox.name}': add them here")
    token = api.post("/v3.4/distributor/oauth2/token", json={"grant_type": "client_credentials"},
                     headers={"Authorization": basic(sandbox.client_id, sandbox.client_secret)}).json()
    return {"headers": {"Authorization": f"Bearer {token['access_token']}"}}


LIST_PATHS = {name: sandbox.orders_path for name, sandbox in registry().items()}
"""Each API's documented list of orders, as its sandbox names it."""
