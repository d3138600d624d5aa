"""A shop that keeps selling (``serve --live RATE``): orders are created, paid, changed and cancelled as the
sandbox's clock moves, ``RATE`` events per minute, each through the sandbox's own control operations, so each
follows its vendor's rules (Frontcore ids rising, e-guma ``updated_at`` on cancellation, Prio revisions).

Events are applied when the API is asked, for every moment due since the last request, each stamped at its own
moment (the clock is held there while it happens): what a client sees is exactly what a shop running all along
would show, reproducibly from the seed, and a test drives it with ``POST /_sandbox/clock`` instead of sleeping.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CATCH_UP = 10_000  # events applied at once after a long quiet spell; the older ones are skipped
KINDS = (("create", 50), ("pay", 20), ("change", 18), ("cancel", 12))


class LiveShop:
    """Applies ``rate`` events per minute of the sandbox clock; ``event(rng, kind)`` does one of them."""

    def __init__(self, rate: float, seed: int, now: Callable[[], datetime],
                 event: Callable[[random.Random, str], str | None],
                 hold_clock: Callable[[datetime | None], datetime | None]) -> None:
        if not rate > 0:
            raise ValueError(f"--live is a number of events per minute above 0, not {rate}")
        self.rate = rate
        self.rng = random.Random(f"live:{seed}")
        self.now = now
        self.event = event
        self.hold_clock = hold_clock
        self.last = now()
        self.made: list[str] = []  # the orders the shop created, in order
        self.counts = {kind: 0 for kind, _ in KINDS}
        self.lock = threading.Lock()

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=60 / self.rate)

    def catch_up(self) -> int:
        """Apply every event due between the last call and now, each at its own moment; the number applied."""
        with self.lock:
            now = self.now()
            if now < self.last:  # the clock was set back (POST /_sandbox/clock): the shop sells from there
                self.last = now
            due = int((now - self.last) / self.step)
            if due <= 0:
                return 0
            if due > MAX_CATCH_UP:
                self.last += self.step * (due - MAX_CATCH_UP)
                due = MAX_CATCH_UP
            previous = self.hold_clock(None)
            try:
                for _ in range(due):
                    self.last += self.step
                    self.hold_clock(self.last)
                    self._one()
            finally:
                self.hold_clock(previous)
            return due

    def restart(self) -> None:
        """The clock was set to a moment (not advanced): the shop sells from there, nothing happened in between."""
        with self.lock:
            self.last = self.now()

    def _one(self) -> None:
        kind = self.rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        made = self.event(self.rng, kind)
        self.counts[kind] += 1
        if kind == "create" and made is not None:
            self.made.append(made)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"rate_per_minute": self.rate, "last_event_at": self.last.isoformat(), "events": dict(self.counts),
                    "created": list(self.made)}


class LiveMiddleware:
    """Brings the shop up to the clock before each API request (never for ``/_sandbox`` or ``/openapi.json``)."""

    def __init__(self, app: ASGIApp, shop: LiveShop, lock: Any) -> None:
        self.app = app
        self.shop = shop
        self.lock = lock  # the store's: an event is one change of the data, never half seen by a page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and not path.startswith("/_sandbox") and path != "/openapi.json":
            with self.lock:
                self.shop.catch_up()
        await self.app(scope, receive, send)
