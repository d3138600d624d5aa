"""Seeded fault injection for every sandbox: the failures a real API produces, on demand and reproducibly.

Every injected failure is written in the API's own error style (see :mod:`ordersync.sandbox.errors`), and
requests are counted per credential as the sandbox finds it (its ``credential`` hook), not per URL.

Spec (``--faults``): comma-separated ``kind:value`` items.

==============  =====================================================================
``429:P``        answer 429 with ``Retry-After`` (see ``retry_after``) with probability P
``500:P``        answer 500 (likewise ``502:P``, ``503:P``)
``reset:P``      drop the connection before any body byte arrives
``truncate:P``   send half of the body, then drop the connection
``latency:MS``   add MS milliseconds to every answer
``rate:N``       allow N requests per second per credential; above it, 429 + Retry-After (overrides the
                 vendor's documented limit, which a sandbox enforces by default)
``drift:P``      with probability P, create or update an order just before answering a list
``retry_after:S`` the Retry-After value in seconds (default 1)
``seed:S``       seed of the fault dice (default 0)
==============  =====================================================================
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersync.sandbox.errors import ApiError, ErrorField, ErrorStyle

STATUS_FAULTS = ("429", "500", "502", "503")
PROBABILITY_FAULTS = (*STATUS_FAULTS, "reset", "truncate", "drift")


@dataclass
class FaultSpec:
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    rate: float | None = None
    retry_after: float = 1.0
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        result = cls()
        if not spec:
            return result
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            kind, sep, value = item.partition(":")
            if not sep:
                raise ValueError(f"fault {item!r} needs a value, like '{item}:0.1'")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"fault {kind!r} has value {value!r}, which is not a number") from None
            if kind in PROBABILITY_FAULTS:
                if not 0 <= number <= 1:
                    raise ValueError(f"fault {kind!r} is a probability between 0 and 1, not {value}")
                result.probabilities[kind] = number
            elif kind == "latency":
                result.latency_ms = number
            elif kind == "rate":
                result.rate = number
            elif kind == "retry_after":
                result.retry_after = number
            elif kind == "seed":
                result.seed = int(number)
            else:
                known = ", ".join([*PROBABILITY_FAULTS, "latency", "rate", "retry_after", "seed"])
                raise ValueError(f"unknown fault {kind!r}; known faults: {known}")
        return result

    @property
    def active(self) -> bool:
        return bool(self.probabilities or self.latency_ms or self.rate)


Credential = Callable[[Request], "str | None"]


class FaultMiddleware:
    """Wraps a sandbox's API routes (never ``/_sandbox`` or ``/openapi.json``) with the faults of a spec.

    ``credential`` tells who is asking (one rate window per credential); ``style`` writes the error bodies.
    """

    def __init__(self, app: ASGIApp, spec: FaultSpec, drift: Callable[[random.Random], Any] | None = None,
                 credential: Credential | None = None, style: ErrorStyle | None = None) -> None:
        self.app = app
        self.spec = spec
        self.drift = drift
        self.credential = credential
        self.style = style or ErrorField()
        self.rng = random.Random(spec.seed)
        self.lock = threading.Lock()
        self.windows: dict[str, list[float]] = {}
        logging.getLogger("uvicorn.error").addFilter(_QUIET_CUT)

    def _roll(self, kind: str) -> bool:
        p = self.spec.probabilities.get(kind, 0.0)
        if not p:
            return False
        with self.lock:
            return self.rng.random() < p

    def _over_rate(self, scope: Scope) -> bool:
        if not self.spec.rate:
            return False
        who = (self.credential(Request(scope)) if self.credential else None) or ""
        now = time.monotonic()
        with self.lock:
            window = [t for t in self.windows.get(who, []) if now - t < 1.0]
            over = len(window) >= self.spec.rate
            if not over:
                window.append(now)
            self.windows[who] = window
        return over

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox") or path == "/openapi.json":
            await self.app(scope, receive, send)
            return
        if self.spec.latency_ms:
            await pause(self.spec.latency_ms / 1000)
        if self._over_rate(scope):
            await self._refuse(send, ApiError(429, "Too many requests: the rate limit is "
                                                   f"{self.spec.rate:g} requests per second"))
            return
        for status in STATUS_FAULTS:
            if self._roll(status):
                await self._refuse(send, ApiError(int(status), f"Injected fault: {FAULT_SENTENCES[status]}"))
                return
        if self.drift is not None and self._roll("drift"):
            with self.lock:
                self.drift(self.rng)
        if self._roll("reset"):
            await _cut(self.app, scope, receive, send, keep=0.0)
        elif self._roll("truncate"):
            await _cut(self.app, scope, receive, send, keep=0.5)
        else:
            await self.app(scope, receive, send)


    async def _refuse(self, send: Send, error: ApiError) -> None:
        """An error answer in the API's own style; 429 and 503 say when to come back."""
        body = self.style.body(error)
        headers = [(b"content-type", self.style.media_type.encode()), (b"content-length", str(len(body)).encode())]
        if error.status in (429, 503):
            headers.append((b"retry-after", f"{self.spec.retry_after:g}".encode()))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def pause(seconds: float) -> None:
    """Wait at least ``seconds`` of real time: an event loop's timer (uvloop's, with its cached clock) may fire
    a little early, and a slow answer must never be faster than promised."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(left + 0.001)


FAULT_SENTENCES = {"429": "too many requests", "500": "internal server error", "502": "bad gateway",
                   "503": "service unavailable"}


async def _cut(app: ASGIApp, scope: Scope, receive: Receive, send: Send, keep: float) -> None:
    """Run the app, then send only part of its body: the client sees the connection drop mid-answer."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    assert start is not None
    body = b"".join(chunks)
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    # The server refuses to finish a body shorter than announced and drops the connection: that is the fault.
    await send({"type": "http.response.body", "body": body[: int(len(body) * keep)]})


class _QuietCut(logging.Filter):
    """Keeps the server's log free of the tracebacks of connections we cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and "Content-Length" in str(record.exc_info[1]))


_QUIET_CUT = _QuietCut()
