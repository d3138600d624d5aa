"""The base of every sandbox: data in a :class:`DocStore`, a seeded generator, control endpoints, OpenAPI.

An API's sandbox subclasses :class:`Sandbox` and supplies its collections, its generator, its routes and the
changes its control endpoints can make; everything an API shares (reset, reseed, a settable clock, faults,
the OpenAPI document) lives here once.
"""

from __future__ import annotations

import functools
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from ordersync.sandbox.docstore import DocStore
from ordersync.sandbox.faults import FaultMiddleware, FaultSpec


@dataclass
class SandboxOptions:
    """What ``ordersync serve`` and the demo can set on any sandbox."""

    orders: int = 2000
    seed: int = 1
    api_key: str = "sandbox-key"
    faults: str | None = None
    data_path: str = ":memory:"
    anchor: datetime | None = None  # "now" of the generated history; default: today 00:00 UTC
    extra: dict[str, Any] = field(default_factory=dict)


class JSON(Response):
    """A JSON answer rendered with orjson (fast, keeps non-ASCII as UTF-8)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


Handler = Callable[["Sandbox", Request], Awaitable[Response]]


def control_input(handler: Handler) -> Handler:
    """A control endpoint given a body it cannot use answers 400 with the reason, not 500."""

    @functools.wraps(handler)
    async def guarded(self: Sandbox, request: Request) -> Response:
        try:
            return await handler(self, request)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": f"bad control request: {exc!r}"}, status_code=400)

    return guarded


class Sandbox(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.faults = FaultSpec.parse(self.options.faults)
        self.store = DocStore(self.options.data_path)
        self._fixed_now: datetime | None = None
        self.define()
        self.ensure_generated(self.options.orders, self.options.seed)

    # --- time -------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox's clock (UTC); tests may pin it through ``POST /_sandbox/clock``."""
        return self._fixed_now or datetime.now(UTC).replace(microsecond=0)

    def anchor(self) -> datetime:
        if self.options.anchor:
            return self.options.anchor.astimezone(UTC)
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    # --- data -------------------------------------------------------------------------------------------
    def ensure_generated(self, orders: int, seed: int) -> None:
        """Generate the data unless the store already holds exactly this generation (a file kept between runs)."""
        anchor = self.anchor()
        stamp = f"{self.name}:{orders}:{seed}:{anchor.isoformat()}"
        if self.store.meta_get("generation") == stamp:
            return
        self.store.clear()
        self.generate(random.Random(seed), orders, anchor)
        self.store.analyze()
        self.store.meta_set("generation", stamp)

    @abstractmethod
    def define(self) -> None:
        """Create the collections in ``self.store``."""

    @abstractmethod
    def generate(self, rng: random.Random, orders: int, anchor: datetime) -> None:
        """Fill the store with ``orders`` orders (and their customers), reproducibly from ``rng``."""

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The API's own endpoints."""

    @abstractmethod
    def openapi_paths(self) -> dict[str, Any]:
        """The ``paths`` object of the OpenAPI description."""

    @abstractmethod
    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create one order now; ``data`` may set any documented field, the rest is generated."""

    @abstractmethod
    def update_order(self, order_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Change one order as the vendor would (moving its modification time); None if unknown."""

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name} has no customers of its own")

    def update_customer(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError(f"{self.name} has no customers of its own")

    def order_ids(self) -> list[str]:
        return [str(doc_id) for (doc_id,) in self.store.conn.execute("SELECT id FROM orders ORDER BY id")]

    def drift(self, rng: random.Random) -> None:
        """One change of the data while a client pages: a new order, or an update of an existing one."""
        if rng.random() < 0.5:
            self.create_order({})
            return
        ids = self.order_ids()
        if ids:
            self.update_order(rng.choice(ids), {})

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        """Settings of a source of this API that syncs from this sandbox (used by ``ordersync demo``)."""
        return {"type": self.name, "base_url": base_url, "api_key": self.options.api_key}

    # --- HTTP -------------------------------------------------------------------------------------------
    def app(self) -> ASGIApp:
        routes: list[BaseRoute] = [
            *self.routes(),
            Route("/openapi.json", self._openapi, methods=["GET"]),
            Route("/_sandbox/reset", self._reset, methods=["POST"]),
            Route("/_sandbox/clock", self._clock, methods=["POST"]),
            Route("/_sandbox/stats", self._stats, methods=["GET"]),
            Route("/_sandbox/orders", self._create_order, methods=["POST"]),
            Route("/_sandbox/orders/{id}", self._update_order, methods=["PATCH"]),
            Route("/_sandbox/customers", self._create_customer, methods=["POST"]),
            Route("/_sandbox/customers/{id}", self._update_customer, methods=["PATCH"]),
        ]
        app: ASGIApp = Starlette(routes=routes)
        if self.faults.active:
            app = FaultMiddleware(app, self.faults, self.drift)
        return app

    async def _openapi(self, request: Request) -> Response:
        doc = {
            "openapi": "3.1.0",
            "info": {"title": f"{self.title} (ordersync sandbox)", "version": "1"},
            "paths": self.openapi_paths(),
        }
        return JSON(doc)

    @control_input
    async def _reset(self, request: Request) -> Response:
        body = await _body(request)
        self.options.orders = int(body.get("orders", self.options.orders))
        self.options.seed = int(body.get("seed", self.options.seed))
        self.store.meta_set("generation", "")
        self.ensure_generated(self.options.orders, self.options.seed)
        return JSON({"orders": self.options.orders, "seed": self.options.seed})

    @control_input
    async def _clock(self, request: Request) -> Response:
        body = await _body(request)
        value = body.get("now")
        if body.get("advance_seconds"):
            self._fixed_now = self.now() + timedelta(seconds=float(body["advance_seconds"]))
        else:
            self._fixed_now = datetime.fromisoformat(value).astimezone(UTC) if value else None
        return JSON({"now": self.now().isoformat()})

    async def _stats(self, request: Request) -> Response:
        return JSON({"orders": self.store.count("orders"), "now": self.now().isoformat()})

    @control_input
    async def _create_order(self, request: Request) -> Response:
        with self.store.lock:
            doc = self.create_order(await _body(request))
        return JSON(doc, status_code=201)

    @control_input
    async def _update_order(self, request: Request) -> Response:
        with self.store.lock:
            doc = self.update_order(request.path_params["id"], await _body(request))
        return JSON(doc) if doc is not None else JSONResponse({"error": "no such order"}, status_code=404)

    @control_input
    async def _create_customer(self, request: Request) -> Response:
        try:
            with self.store.lock:
                doc = self.create_customer(await _body(request))
        except NotImplementedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSON(doc, status_code=201)

    @control_input
    async def _update_customer(self, request: Request) -> Response:
        try:
            with self.store.lock:
                doc = self.update_customer(request.path_params["id"], await _body(request))
        except NotImplementedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSON(doc) if doc is not None else JSONResponse({"error": "no such customer"}, status_code=404)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return orjson.loads(raw) if raw.strip() else {}


def query_param(name: str, schema_type: str, description: str, **extra: Any) -> dict[str, Any]:
    """One OpenAPI query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": schema_type, **extra}}
