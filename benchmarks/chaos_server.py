"""One sandbox for ``chaos.py``: the API with the sandbox's own fault injection, counted by kind.

Routes:
* the API's own paths: an order created or changed just before the answer (``--drift P``, the sandbox's own
  ``drift``), slow answers (``--slow P`` of ``--slow-seconds``: the server waits, then reads its data), held
  answers (``--held P``, up to ``--held-seconds``: the server reads its data at once and sends the answer later,
  as a proxy or a busy network does, so that answers computed in one order arrive in another), then the sandbox's
  ``FaultMiddleware`` with the ``--faults`` spec (429 + Retry-After, 5xx, resets, truncated bodies);
* ``/_clean/...``: the same API without faults (the truth the harness compares with);
* ``/_sandbox/...``: the sandbox's control endpoints (create and change orders), never faulted;
* ``GET /_chaos/stats``: requests and faults by kind; ``POST /_chaos/calm``: no more drift (faults go on), so
  that the final run can be held to "every change the API held when the run started".

    python benchmarks/chaos_server.py API --orders N --data FILE --faults SPEC [--slow P]
(prints the root URL on its first line of output, then serves until terminated)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import KEY  # noqa: E402


class Counted:
    """Counts every API request and classifies what the client received: status faults, cut bodies, slow ones."""

    def __init__(self, clean: ASGIApp, faulty: ASGIApp, slow: float, slow_seconds: float, seed: int,
                 drift: float, change: Callable[[random.Random], None], held: float = 0.0,
                 held_seconds: float = 0.0) -> None:
        self.clean, self.faulty = clean, faulty
        self.slow, self.slow_seconds = slow, slow_seconds
        self.held, self.held_seconds = held, held_seconds
        self.drift, self.change = drift, change
        self.rng = random.Random(seed + 1)
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.calm = False  # set by POST /_chaos/calm: no more data changes (faults go on)

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox") or path == "/openapi.json":
            await self.clean(scope, receive, send)
            return
        if path == "/_chaos/calm":
            self.calm = True
        if path in ("/_chaos/stats", "/_chaos/calm"):
            body = orjson.dumps(dict(self.counts))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body})
            return
        if path.startswith("/_clean/"):
            inner = path[len("/_clean"):]
            await self.clean({**scope, "path": inner, "raw_path": inner.encode()}, receive, send)
            return
        self.count("requests")
        with self.lock:
            slow = self.rng.random() < self.slow
            drift = not self.calm and self.rng.random() < self.drift
            hold = self.rng.random() * self.held_seconds if self.rng.random() < self.held else 0.0
        if drift:  # an order created or changed just before this answer is computed: data moving under a pager
            self.count("drift")
            self.change(self.rng)
        if slow:
            self.count("slow")
            await asyncio.sleep(self.slow_seconds)
        declared: int | None = None
        sent = 0
        status = 0

        async def watch(message: Message) -> None:
            nonlocal declared, sent, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                length = dict(message.get("headers") or []).get(b"content-length")
                declared = int(length) if length else None
            else:
                sent += len(message.get("body", b""))
            await send(message)

        async def computed_now_sent_later(message: Message) -> None:
            held.append(message)

        held: list[Message] = []
        try:
            if hold:
                self.count("held")
                await self.faulty(scope, receive, computed_now_sent_later)
                await asyncio.sleep(hold)
                for message in held:
                    await watch(message)
            else:
                await self.faulty(scope, receive, watch)
        finally:
            if status == 429:
                self.count("429")
            elif status >= 500:
                self.count("5xx")
            elif declared is not None and sent < declared:
                self.count("reset" if sent == 0 else "truncated")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("api")
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", required=True)
    parser.add_argument("--faults", default="")
    parser.add_argument("--slow", type=float, default=0.0, help="probability of a slow answer")
    parser.add_argument("--slow-seconds", type=float, default=1.5)
    parser.add_argument("--drift", type=float, default=0.0,
                        help="probability that an order is created or changed just before an answer")
    parser.add_argument("--held", type=float, default=0.0,
                        help="probability that an answer is computed at once and sent up to --held-seconds later")
    parser.add_argument("--held-seconds", type=float, default=0.5)
    args = parser.parse_args()

    from ordersync.sandbox import load_sandbox
    from ordersync.sandbox.app import SandboxOptions
    from ordersync.sandbox.faults import FaultMiddleware, FaultSpec
    from ordersync.sandbox.runner import start_in_thread

    sandbox = load_sandbox(args.api, SandboxOptions(orders=args.orders, seed=args.seed, api_key=KEY,
                                                    data_path=args.data, rate_limit=False))
    clean = sandbox.app()

    def drift(rng: random.Random) -> None:
        with sandbox.store.lock:
            sandbox.drift(rng)

    spec = FaultSpec.parse(args.faults)
    faulted = FaultMiddleware(clean, spec, credential=sandbox.credential, style=sandbox.error_style)
    counted = Counted(clean, faulted, args.slow, args.slow_seconds, spec.seed, args.drift, drift, args.held,
                      args.held_seconds)
    server = start_in_thread(counted)
    print(server.base_url, flush=True)
    while server.thread.is_alive():
        time.sleep(0.5)


if __name__ == "__main__":
    main()
