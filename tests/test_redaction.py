"""A credential a vendor echoes in an error body, in any form (issue 24, point 12), never reaches the error a user
reads nor ``_ordersync_runs.error``: base64 of the key, the key upper-cased, the key less its last character,
base64 of the Prio client secret alone and of the access token. A real server on 127.0.0.1, the real engine."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ordersync.http import Redactor
from ordersync.sandbox.runner import RunningServer, start_in_thread
from ordersync.store import Store
from tests.support import rows, sync

KEY = "fc_live_8f3KqZ2xW9mT4vB7nR1sL6yP0aE5hJ"
CLIENT_ID, SECRET, TOKEN = "prio-client-4711", "pS3cr3t_Vx9QmZ2kT7wL4nB8", "tok.eyJhbGciOiJIUzI1NiJ9.Zk3xQ9wT2mB"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORMS: dict[str, Callable[[str], str]] = {
    "base64": b64,
    "upper-cased": str.upper,
    "less its last character": lambda s: s[:-1],
    "less its first character, lower-cased": lambda s: s[1:].lower(),
    "base64 inside a Basic header": lambda s: b64(f"someone:{s}"),
    "URL-safe base64 of the secret and more": lambda s: base64.urlsafe_b64encode(f"{s}?>~".encode()).decode(),
}
ECHO: list[str] = []  # what the server echoes in its error bodies (set by each test)


async def frontcore_orders(request: Request) -> Response:
    return JSONResponse({"error": f"Wrong API Key {ECHO[0]} (received)"}, status_code=401)


async def prio_token(request: Request) -> Response:
    return JSONResponse({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})


async def prio_orders(request: Request) -> Response:
    return JSONResponse({"error": "INVALID_REQUEST", "error_description": f"bad credentials {ECHO[0]}"},
                        status_code=400)


@pytest.fixture(scope="module")
def vendor() -> Iterator[RunningServer]:
    app = Starlette(routes=[Route("/v2/orders", frontcore_orders), Route("/prio/oauth2/token", prio_token,
                                                                        methods=["POST"]),
                            Route("/prio/orders", prio_orders)])
    server = start_in_thread(app)
    yield server
    server.stop()


def failed_with(store: Store, settings: dict[str, object], echoed: str) -> str:
    ECHO[:] = [echoed]
    [result] = sync(store, "shop", {**settings, "max_retries": 0, "requests_per_second": 1000})
    [(stored,)] = rows(store, "SELECT error FROM _ordersync_runs")
    assert result.error == stored and stored is not None and "***" in stored
    return stored


@pytest.mark.parametrize("form", list(FORMS))
def test_a_frontcore_key_echoed_in_any_form_is_redacted(store: Store, vendor: RunningServer, form: str) -> None:
    echoed = FORMS[form](KEY)
    error = failed_with(store, {"type": "frontcore", "api_key": KEY, "base_url": f"{vendor.base_url}/v2"}, echoed)
    assert echoed not in error and echoed[: len(echoed) // 2] not in error, error
    assert "Wrong API Key" in error and "(received)" in error  # the rest of the vendor's words are kept


@pytest.mark.parametrize(("what", "secret"), [("client secret", SECRET), ("access token", TOKEN)])
@pytest.mark.parametrize("form", ["base64", "upper-cased", "less its last character"])
def test_a_prio_secret_or_token_echoed_in_any_form_is_redacted(store: Store, vendor: RunningServer, what: str,
                                                               secret: str, form: str) -> None:
    echoed = FORMS[form](secret)
    settings: dict[str, object] = {"type": "prio", "client_id": CLIENT_ID, "client_secret": SECRET,
                                   "base_url": f"{vendor.base_url}/prio"}
    error = failed_with(store, settings, echoed)
    assert echoed not in error and echoed[: len(echoed) // 2] not in error, error


def test_the_rule_a_run_of_half_a_secret_and_eight_characters_identifies_it() -> None:
    """Shorter runs are kept (they cannot identify a secret, and would hide ordinary words); a secret shorter
    than eight characters is redacted only whole, in any case."""
    redact = Redactor([KEY, "abc12"])
    half = len(KEY) // 2 + len(KEY) % 2
    assert redact(f"<{KEY[3:3 + half]}>") == "<***>"
    assert redact(f"<{KEY[3:3 + half - 1]}>") == f"<{KEY[3:3 + half - 1]}>"
    assert redact("<ABC12> <abc1>") == "<***> <abc1>"
    assert redact("GET /v2/orders?page=2") == "GET /v2/orders?page=2"
