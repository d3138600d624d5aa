"""The base of every sandbox: data in a :class:`DocStore`, a seeded generator, control endpoints, OpenAPI.

An API's sandbox subclasses :class:`Sandbox` and supplies its collections, its generator, its routes, its
credential and auth check, its error style and the changes its control endpoints can make; everything an API
shares (reset, reseed, a settable clock, faults, the vendor's rate limit, the OpenAPI frame, error rendering,
a data file that keeps its time anchor) lives here once.
"""

from __future__ import annotations

import functools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from ordersync.sandbox.docstore import DocStore
from ordersync.sandbox.errors import ApiError, BadParam, ErrorField, ErrorStyle
from ordersync.sandbox.faults import FaultMiddleware, FaultSpec
from ordersync.sandbox.live import LiveMiddleware, LiveShop
from ordersync.sandbox.openapi import query_param
from ordersync.sandbox.schema import ControlError
from ordersync.sandbox.script import Rule, Script, ScriptMiddleware

__all__ = ["JSON", "Sandbox", "SandboxOptions", "control_input", "query_param"]

DEFAULT_ORDERS = 2000
DEFAULT_SEED = 1


@dataclass
class SandboxOptions:
    """What ``ordersync serve`` and the demo can set on any sandbox."""

    # None: what a kept data file holds, else DEFAULT_ORDERS / DEFAULT_SEED. A value that contradicts the file is
    # refused (the file may hold changes made through the control API: it is never regenerated silently).
    orders: int | None = None
    seed: int | None = None
    api_key: str = "sandbox-key"
    faults: str | None = None
    data_path: str = ":memory:"
    # "now" of the generated history. Default: the anchor kept in the data file, else today 00:00 UTC.
    anchor: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Enforce the vendor's documented rate limit (Frontcore: 5 requests/s per key); False lifts it (benchmarks).
    rate_limit: bool = True
    # A shop that keeps selling: events (orders created, paid, changed, cancelled) per minute of the clock; 0: off.
    live: float = 0.0


class JSON(Response):
    """A JSON answer rendered with orjson (fast, keeps non-ASCII as UTF-8)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


Handler = Callable[["Sandbox", Request], Awaitable[Response]]


def control_input(handler: Handler) -> Handler:
    """A control endpoint given a body it cannot use answers 400 with the reason, not 500; a field of the wrong
    type (``{"is_paid": "maybe"}``) is 422 naming the field, so it is never stored and then served."""

    @functools.wraps(handler)
    async def guarded(self: Sandbox, request: Request) -> Response:
        try:
            return await handler(self, request)
        except ControlError as exc:
            return JSONResponse({"error": f"bad control request: {exc}", "field": exc.field}, status_code=422)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            return JSONResponse({"error": f"bad control request: {exc}"}, status_code=400)

    return guarded


Endpoint = Callable[[Request], Awaitable[Response]]


class Sandbox(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    error_style: ClassVar[ErrorStyle] = ErrorField()
    invalid_status: ClassVar[int] = 400  # the status of a refused query parameter (Firespring: 422)
    invalid_code: ClassVar[str] = ""  # the vendor's code word for it, if it has one
    requests_per_second: ClassVar[float | None] = None  # the vendor's documented limit per credential
    orders_path: ClassVar[str]  # the documented list of orders (a GET with the credentials answers its first page)

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.faults = FaultSpec.parse(self.options.faults)
        if self.faults.rate is None and self.options.rate_limit and self.requests_per_second:
            self.faults.rate = self.requests_per_second
        self.store = DocStore(self.options.data_path)
        self._fixed_now: datetime | None = None
        self._anchor: datetime | None = None
        self.script = Script()
        self.adopt_kept_generation()  # before define(), which starts a file of another layout over
        self.define()
        self.ensure_generated(self.orders, self.seed)
        self.store.checkpoint()  # the data file alone holds the generated data, not its -wal beside it
        self.live = LiveShop(self.options.live, self.seed, self.now, self.live_event, self.hold_clock) \
            if self.options.live else None

    # --- time -------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox's clock (UTC); tests may pin it through ``POST /_sandbox/clock``."""
        return self._fixed_now or datetime.now(UTC).replace(microsecond=0)

    def hold_clock(self, moment: datetime | None) -> datetime | None:
        """Pin the clock at ``moment`` (None releases it); the pin it replaces. The live shop holds the clock at
        each event's moment while the event happens, so that it is stamped then."""
        previous, self._fixed_now = self._fixed_now, moment
        return previous

    def anchor(self) -> datetime:
        """The "now" the generated history ends at: kept in the data file, so a restart on a later day serves
        the same records (and every change made to them)."""
        if self._anchor is None:
            self._anchor = self._wanted_anchor(None)
        return self._anchor

    def _wanted_anchor(self, stored: str | None) -> datetime:
        if self.options.anchor:
            return self.options.anchor.astimezone(UTC)
        if stored:
            return datetime.fromisoformat(stored)
        return self.today()

    @staticmethod
    def today() -> datetime:
        """00:00 UTC of the current day: the anchor of a new generation when none is given or kept."""
        return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    # --- data -------------------------------------------------------------------------------------------
    @property
    def orders(self) -> int:
        return self.options.orders if self.options.orders is not None else DEFAULT_ORDERS

    @property
    def seed(self) -> int:
        return self.options.seed if self.options.seed is not None else DEFAULT_SEED

    def adopt_kept_generation(self) -> None:
        """Serve what a kept data file holds: its size and seed unless given; a given one (or an anchor) that
        contradicts the file is refused, naming what the file holds, rather than regenerating it silently."""
        stamp, anchor = self.store.meta_get("generation"), self.store.meta_get("anchor")
        if not stamp or not anchor:
            return
        api, orders, seed = stamp.rsplit(":", 2)
        if api != self.name:
            raise ValueError(f"{self.options.data_path} holds a {api} sandbox, not {self.name}")
        wanted = {"orders": self.options.orders, "seed": self.options.seed,
                  "anchor": self.options.anchor.astimezone(UTC).isoformat() if self.options.anchor else None}
        kept: dict[str, Any] = {"orders": int(orders), "seed": int(seed), "anchor": anchor}
        clash = [name for name, value in wanted.items() if value is not None and value != kept[name]]
        if clash:
            holds = f"{kept['orders']:,} orders of seed {kept['seed']}, anchored at {kept['anchor'][:10]}"
            asked = ", ".join(f"--{name} {wanted[name]}" for name in clash)
            raise ValueError(f"{self.options.data_path} holds {holds} (and every change made to them); {asked} "
                             "contradicts it: leave it out to serve the file, or remove the file to generate anew")
        self.options.orders, self.options.seed = kept["orders"], kept["seed"]

    def close(self) -> None:
        """Checkpoint and close the data file, so that the file alone is complete (copy it, attach it)."""
        self.store.close()

    def ensure_generated(self, orders: int, seed: int) -> None:
        """Generate the data unless the store already holds this generation (a file kept between runs).

        The generation is named by API, size and seed; its anchor is stored beside it, and reused unless
        ``SandboxOptions.anchor`` asks for another one.
        """
        stamp = f"{self.name}:{orders}:{seed}"
        same = self.store.meta_get("generation") == stamp
        anchor = self._wanted_anchor(self.store.meta_get("anchor") if same else None)
        self._anchor = anchor
        if same and self.store.meta_get("anchor") == anchor.isoformat():
            return
        self.store.clear()
        self.generate(random.Random(seed), orders, anchor)
        self.store.analyze()
        self.store.meta_set("anchor", anchor.isoformat())
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

    def live_event(self, rng: random.Random, kind: str) -> str | None:
        """One event of the live shop: ``create`` makes an order (its id returned); ``pay``, ``change`` and
        ``cancel`` happen to one of the latest orders, through :meth:`live_change`."""
        if kind == "create":
            return str(self.order_id_of(self.create_order({})))
        with self.store.lock:
            recent = [row[0] for row in self.store.conn.execute(
                "SELECT id FROM (SELECT id FROM orders ORDER BY rowid DESC LIMIT 200)")]
        if recent:
            self.live_change(str(rng.choice(recent)), kind, rng)
        return None

    def live_change(self, order_id: str, kind: str, rng: random.Random) -> None:
        """``pay``, ``change`` or ``cancel`` one order as the vendor would; the default: some change."""
        self.update_order(order_id, {})

    def order_id_of(self, doc: dict[str, Any]) -> Any:
        return doc.get("id")

    def expire_tokens(self) -> int:
        """Expire every access token now (APIs with tokens); the number expired."""
        raise NotImplementedError(f"{self.name} has no access tokens")

    def demo_settings(self, base_url: str) -> dict[str, Any]:
        """Settings of a source of this API that syncs from this sandbox (used by ``ordersync demo``)."""
        return {"type": self.name, "base_url": base_url, "api_key": self.options.api_key}

    # --- auth and errors --------------------------------------------------------------------------------
    def credential(self, request: Request) -> str | None:
        """Who is asking, as the vendor identifies a client (its key, its client id): rate limits count per
        credential. None when the request carries none."""
        return None

    def authenticate(self, request: Request) -> None:
        """Raise the vendor's :class:`ApiError` unless the request may read the API (the one shape of every
        sandbox's auth check). The default: the credential must be the sandbox's key."""
        key = self.credential(request)
        if key != self.options.api_key:
            raise ApiError(401, "Missing API key" if not key else "Wrong API key", code="unauthorized")

    def error(self, error: ApiError) -> Response:
        if isinstance(error, BadParam):
            error.status = error.status or self.invalid_status
            error.code = error.code or self.invalid_code
        return self.error_style.response(error)

    def endpoint(self, handler: Endpoint, auth: bool = True) -> Endpoint:
        """``handler`` behind the auth check, with every :class:`ApiError` it raises written in the vendor's style."""

        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            try:
                if auth:
                    self.authenticate(request)
                return await handler(request)
            except ApiError as exc:
                return self.error(exc)

        return guarded

    def security_schemes(self, base_url: str) -> dict[str, Any]:
        """The OpenAPI ``securitySchemes`` of the API (the first one applies to every operation by default)."""
        return {}

    def servers(self, base_url: str) -> list[dict[str, Any]]:
        """The OpenAPI ``servers``: this sandbox (paths are absolute, as the vendor's URLs are)."""
        return [{"url": base_url, "description": f"this {self.title} sandbox"}]

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
            Route("/_sandbox/faults", self._faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/live", self._live, methods=["GET"]),
            Route("/_sandbox/snapshot", self._snapshot, methods=["GET", "PUT"]),
        ]
        app: ASGIApp = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})
        if self.live is not None:
            app = LiveMiddleware(app, self.live, self.store.lock)
        app = ScriptMiddleware(app, self.script, self.error_style)
        if self.faults.active:
            app = FaultMiddleware(app, self.faults, self.drift, credential=self.credential, style=self.error_style)
        return app

    def sample(self, collection: str = "orders", size: int = 300) -> list[dict[str, Any]]:
        """Records to infer the OpenAPI schemas from: the oldest and the newest."""
        with self.store.lock:
            ids = [row[0] for row in self.store.conn.execute(
                f"SELECT id FROM (SELECT id FROM {collection} ORDER BY id LIMIT ?) UNION "
                f"SELECT id FROM (SELECT id FROM {collection} ORDER BY id DESC LIMIT ?)", (size, size))]
        return [doc for doc in (self.store.get(collection, i) for i in ids) if doc is not None]

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        """An unknown path or method is answered in the vendor's error style too."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Internal server error"
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        return self.error_style.response(ApiError(status, str(detail), headers=headers))

    async def _openapi(self, request: Request) -> Response:
        base_url = str(request.base_url).rstrip("/")
        schemes = self.security_schemes(base_url)
        doc: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": f"{self.title} (ordersync sandbox)", "version": "1"},
            "servers": self.servers(base_url),
            "paths": self.openapi_paths(),
            "components": {"securitySchemes": schemes},
        }
        if schemes:
            doc["security"] = [{next(iter(schemes)): []}]
        return JSON(doc)

    @control_input
    async def _reset(self, request: Request) -> Response:
        body = await _body(request)
        orders = _whole(body.get("orders", self.orders), "orders", 1, 10_000_000)
        seed = _whole(body.get("seed", self.seed), "seed", 0, 2**63 - 1)
        if body.get("anchor"):
            self.options.anchor = datetime.fromisoformat(str(body["anchor"])).astimezone(UTC)
        else:  # regenerate at the anchor in use, not at today's
            self.options.anchor = self.anchor()
        self.options.orders, self.options.seed = orders, seed
        self.store.meta_set("generation", "")
        self.ensure_generated(orders, seed)
        self.store.checkpoint()
        return JSON({"orders": orders, "seed": seed, "anchor": self.anchor().isoformat()})

    @control_input
    async def _clock(self, request: Request) -> Response:
        body = await _body(request)
        value = body.get("now")
        if body.get("advance_seconds"):
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
                raise ValueError("advance_seconds must be a number of seconds")
            self._fixed_now = self.now() + timedelta(seconds=seconds)
        else:
            if value is not None and not isinstance(value, str):
                raise ValueError("now must be an ISO 8601 date-time with an offset")
            self._fixed_now = datetime.fromisoformat(value).astimezone(UTC) if value else None
            if self.live is not None:  # a live shop sells from the new moment; advancing lets its time pass
                self.live.restart()
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


    @control_input
    async def _faults(self, request: Request) -> Response:
        """Scripted faults: POST adds a rule (``{"path": "/v2/orders", "status": 503, "times": 3}``, ``{"query":
        {"page": "4"}, "latency_ms": 2000}``) or expires the tokens now (``{"expire_tokens": true}``); GET lists
        the pending rules; DELETE drops them."""
        if request.method == "DELETE":
            self.script.clear()
        elif request.method == "POST":
            body = await _body(request)
            if body.get("expire_tokens") is True and len(body) == 1:
                try:
                    return JSON({"expired": self.expire_tokens()})
                except NotImplementedError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=404)
            self.script.add(Rule.parse(body))
            return JSON(self.script.state(), status_code=201)
        return JSON(self.script.state())

    async def _live(self, request: Request) -> Response:
        """The live shop's rate, its events so far and the ids of the orders it created (after catching up)."""
        if self.live is None:
            return JSONResponse({"error": "not live: start the sandbox with --live RATE"}, status_code=404)
        with self.store.lock:
            self.live.catch_up()
        return JSON(self.live.state())

    @control_input
    async def _snapshot(self, request: Request) -> Response:
        """GET: the sandbox's whole state as one SQLite file (data, anchor, changes, a pinned clock); PUT such a
        file: serve it from now on. The same file is a ``--data`` file: ``serve API --data bug.sqlite``."""
        if request.method == "PUT":
            self.load_snapshot(await request.body())
            return JSON({"orders": self.store.count("orders"), "now": self.now().isoformat()})
        content = self.snapshot()
        return Response(content, media_type="application/vnd.sqlite3", headers={
            "Content-Disposition": f'attachment; filename="{self.name}-snapshot.sqlite"'})

    def snapshot(self) -> bytes:
        """The state as the bytes of one SQLite file."""
        self.store.meta_set("clock", self._fixed_now.isoformat() if self._fixed_now else "")
        return self.store.export_bytes()

    def load_snapshot(self, content: bytes) -> None:
        """Serve the state of a snapshot (this API's; anything else is refused with the reason)."""
        meta = self.store.import_bytes(content, expect=f"{self.name}:")
        api, orders, seed = meta["generation"].rsplit(":", 2)
        self.options.orders, self.options.seed = int(orders), int(seed)
        self.options.anchor = self._anchor = datetime.fromisoformat(meta["anchor"])
        self._fixed_now = datetime.fromisoformat(meta["clock"]) if meta.get("clock") else None
        for cached in ("_faker",):  # generators continue above the loaded ids
            if hasattr(self, cached):
                setattr(self, cached, None)


async def _body(request: Request) -> dict[str, Any]:
    """A control request's JSON object (an empty body is ``{}``); anything else is refused with 400."""
    raw = await request.body()
    body = orjson.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ValueError(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number
