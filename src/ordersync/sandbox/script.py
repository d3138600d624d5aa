"""Scripted faults: failures a test asks for exactly ("the next 3 requests to /v2/orders answer 503", "page 4 is
slow"), not drawn by probability as ``--faults`` does.

``POST /_sandbox/faults`` adds a rule; each rule matches requests by path (a prefix of the API path) and query
values, acts on the next ``times`` of them in arrival order, then is spent. Errors are written in the vendor's style
(429 and 503 with ``Retry-After``), like every other error of the sandbox.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ordersync.sandbox.errors import ApiError, ErrorStyle
from ordersync.sandbox.faults import FAULT_SENTENCES, _cut, pause
from ordersync.sandbox.schema import ControlError, check_fields

ACTIONS = ("status", "latency_ms", "reset", "truncate")
RULE_FIELDS: dict[str, dict[str, Any]] = {
    "path": {"type": "string"}, "query": {"type": "object"}, "times": {"type": "integer"},
    "status": {"type": "integer", "enum": [400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 504]},
    "latency_ms": {"type": "number"}, "reset": {"type": "boolean"}, "truncate": {"type": "boolean"},
    "retry_after": {"type": "number"}, "detail": {"type": "string"},
}


@dataclass
class Rule:
    """One scripted fault: which requests (``path`` prefix, ``query`` values), what happens, how many times."""

    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    times: int = 1
    status: int | None = None
    latency_ms: float = 0.0
    reset: bool = False
    truncate: bool = False
    retry_after: float = 1.0
    detail: str = ""

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Rule:
        check_fields(body, RULE_FIELDS)
        unknown = set(body) - set(RULE_FIELDS)
        if unknown:
            raise ControlError(sorted(unknown)[0], f"unknown; a rule has {', '.join(RULE_FIELDS)}")
        if not any(body.get(action) for action in ACTIONS):
            raise ControlError("status", "a rule needs an action: status, latency_ms, reset or truncate")
        if body.get("times", 1) < 1:
            raise ControlError("times", "must be at least 1")
        return cls(**{**body, "query": {str(k): str(v) for k, v in (body.get("query") or {}).items()}})

    def matches(self, path: str, query: dict[str, str]) -> bool:
        return path.startswith(self.path) and all(query.get(k) == v for k, v in self.query.items())


class Script:
    """The rules waiting to fire, in the order they were added; thread-safe (control and API calls interleave)."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.fired = 0
        self.lock = threading.Lock()

    def add(self, rule: Rule) -> None:
        with self.lock:
            self.rules.append(rule)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def take(self, path: str, query: dict[str, str]) -> Rule | None:
        """The first rule matching this request, one of its times used up (spent rules leave the script)."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(path, query):
                    rule.times -= 1
                    if rule.times == 0:
                        self.rules.remove(rule)
                    self.fired += 1
                    return rule
        return None

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"pending": [asdict(rule) for rule in self.rules], "fired": self.fired}


class ScriptMiddleware:
    """Applies a :class:`Script` to the API's routes (never ``/_sandbox`` or ``/openapi.json``)."""

    def __init__(self, app: ASGIApp, script: Script, style: ErrorStyle) -> None:
        self.app = app
        self.script = script
        self.style = style

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox") or path == "/openapi.json" or not self.script.rules:
            await self.app(scope, receive, send)
            return
        rule = self.script.take(path, dict(Request(scope).query_params))
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.latency_ms:
            await pause(rule.latency_ms / 1000)
        if rule.status:
            await self._refuse(send, rule)
        elif rule.reset or rule.truncate:
            await _cut(self.app, scope, receive, send, keep=0.5 if rule.truncate else 0.0)
        else:
            await self.app(scope, receive, send)

    async def _refuse(self, send: Send, rule: Rule) -> None:
        status = int(rule.status or 500)
        sentence = FAULT_SENTENCES.get(str(status), "scripted failure")
        error = ApiError(status, rule.detail or f"Scripted fault: {sentence}")
        body = self.style.body(error)
        headers = [(b"content-type", self.style.media_type.encode()), (b"content-length", str(len(body)).encode())]
        if status in (429, 503):
            headers.append((b"retry-after", f"{rule.retry_after:g}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
