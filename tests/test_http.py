"""The HTTP layer: answers that are not JSON, Retry-After, redaction, unreachable hosts, slow answers.

The app is called in-process (``httpx.ASGITransport``) with an injected sleep, so retry waits are observed, not
lived through; only the time-out test needs a real socket (time-outs are the transport's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ordersync.errors import ApiError, AuthError, NotJsonError, TooLargeError, TooSlowError, TransportError
from ordersync.http import HttpClient, HttpSettings, Redactor, parse_retry_after
from ordersync.sandbox.runner import RunningServer, start_in_thread
from tests.support import read_request_head


async def html(request: Request) -> Response:
    return Response("<html><body>Maintenance</body></html>", media_type="text/html", status_code=200)


def busy_then_ok() -> Route:
    """429 twice (each asking for one second), then an answer; the count belongs to this route, not the module."""
    calls = {"busy": 0}

    async def busy(request: Request) -> Response:
        calls["busy"] += 1
        if calls["busy"] < 3:
            return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "1"})
        return Response(b'{"ok": true}', media_type="application/json")

    return Route("/busy", busy)


async def always_500(request: Request) -> Response:
    return PlainTextResponse(f"boom for {request.url}", status_code=500)


async def slow(request: Request) -> Response:
    await asyncio.sleep(1.0)
    return Response(b"[]", media_type="application/json")


async def forbidden(request: Request) -> Response:
    return Response(b'{"error": "Wrong API Key"}', status_code=401, media_type="application/json")


def app() -> Starlette:
    return Starlette(routes=[Route("/html", html), busy_then_ok(), Route("/boom", always_500),
                             Route("/auth", forbidden), Route("/slow", slow)])


@pytest.fixture
def waits() -> list[float]:
    return []


def client(waits: list[float], **settings: float) -> HttpClient:
    """An HttpClient calling a fresh app in-process; its retry waits are recorded in ``waits``, not slept."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return HttpClient("http://test.local", label="test", secrets=["TOPSECRET"], sleep=sleep,
                      transport=httpx.ASGITransport(app=app()),
                      settings=HttpSettings(backoff_initial=0.01, **settings))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start_in_thread(app())
    yield running
    running.stop()


def test_a_body_that_is_not_json_names_the_request_the_status_and_the_first_bytes(waits: list[float]) -> None:
    async def go() -> None:
        async with client(waits) as http:
            response = await http.request("GET", "html", params={"apikey": "TOPSECRET", "page": 2})
            with pytest.raises(NotJsonError) as err:
                response.json()
            message = str(err.value)
            assert "GET /html?apikey=***&page=2" in message and "HTTP 200" in message
            assert "text/html" in message and "Maintenance" in message and "TOPSECRET" not in message

    asyncio.run(go())


def test_retry_after_is_honoured(waits: list[float]) -> None:
    async def go() -> None:
        async with client(waits, max_retries=5) as http:
            response = await http.request("GET", "busy")
            assert response.json() == {"ok": True} and http.requests_sent == 3

    asyncio.run(go())
    assert waits == [1.0, 1.0]  # two 429s, each asking for one second


def test_5xx_gives_up_after_the_retry_budget_with_a_redacted_message(waits: list[float]) -> None:
    async def go() -> None:
        async with client(waits, max_retries=2) as http:
            with pytest.raises(ApiError) as err:
                await http.request("GET", "boom", params={"apikey": "TOPSECRET"})
            assert "HTTP 500" in str(err.value) and "3 attempts" in str(err.value)
            assert "TOPSECRET" not in str(err.value)
            assert http.requests_sent == 3

    asyncio.run(go())


def test_401_is_an_auth_error_with_the_vendor_message_and_a_hint(waits: list[float]) -> None:
    async def go() -> None:
        async with client(waits) as http:
            with pytest.raises(AuthError) as err:
                await http.request("GET", "auth")
            assert "Wrong API Key" in str(err.value) and "check" in str(err.value)

    asyncio.run(go())


def test_unreachable_host() -> None:
    async def go() -> None:
        async with HttpClient("http://127.0.0.1:9", label="x", settings=HttpSettings(max_retries=1,
                                                                                      backoff_initial=0.01)) as http:
            with pytest.raises(TransportError) as err:
                await http.request("GET", "orders")
            assert "nothing listens at 127.0.0.1:9 (connection refused, 2 attempts)" in str(err.value)

    asyncio.run(go())


def test_redactor_replaces_raw_and_url_encoded_forms() -> None:
    redact = Redactor(["a b/c+d"])
    assert redact("x a b/c+d y a%20b%2Fc%2Bd z a+b%2Fc%2Bd") == "x *** y *** z ***"


def test_retry_after_in_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_a_slow_answer_is_retried_unless_the_caller_asks_to_hear_of_it(server: RunningServer) -> None:
    async def go() -> None:
        async with HttpClient(server.base_url, label="test", secrets=["TOPSECRET"],
                              settings=HttpSettings(backoff_initial=0.01, timeout=0.2, max_retries=2)) as http:
            with pytest.raises(TransportError, match="failed after 3 attempts"):
                await http.request("GET", "slow")
            assert http.requests_sent == 3
            with pytest.raises(TooSlowError, match=r"GET /slow\?apikey=\*\*\* took longer than 0.2s"):
                await http.request("GET", "slow", params={"apikey": "TOPSECRET"}, retry_slow=False)
            assert http.requests_sent == 4

    asyncio.run(go())


def test_redactor_replaces_every_escaped_form() -> None:
    secret = 'k3y"é\\x\n'
    redact = Redactor([secret])
    import json
    import urllib.parse

    forms = [secret, repr(secret), repr(secret.encode()), json.dumps(secret), json.dumps(secret, ensure_ascii=False),
             urllib.parse.quote(secret), urllib.parse.quote_plus(secret), secret.strip()]
    for form in forms:
        assert "k3y" not in redact(f"before {form} after"), form


def big(request: Request) -> Response:
    """About 3 MB, streamed without a Content-Length: the cap must hold while reading, not only by the header."""
    async def body() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(15):
            yield b"1," * 100_000
        yield b"1]"

    return StreamingResponse(body(), media_type="application/json")


def test_an_answer_above_the_body_cap_is_refused_with_the_setting_to_raise(waits: list[float]) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=Starlette(routes=[Route("/big", big)]))
        settings = HttpSettings(max_body_bytes=1024 * 1024)
        async with HttpClient("http://test.local", label="shop (frontcore)", secrets=["TOPSECRET"],
                              transport=transport, settings=settings) as http:
            with pytest.raises(ApiError) as err:
                await http.request("GET", "big", params={"apikey": "TOPSECRET"})
            message = str(err.value)
            assert "shop (frontcore)" in message and "GET /big?apikey=***" in message and "TOPSECRET" not in message
            assert "max_body_mb" in message and "1 MB" in message and "\n" not in message
            assert http.requests_sent == 1  # not retried: the same answer would come back
        async with HttpClient("http://test.local", label="x", transport=httpx.ASGITransport(
                app=Starlette(routes=[Route("/big", big)])), settings=HttpSettings(max_body_bytes=4 * 1024 * 1024)) \
                as http:
            assert len((await http.request("GET", "big")).json()) == 1_500_001

    asyncio.run(go())


def test_a_header_that_cannot_be_sent_fails_at_once_without_the_secret(server: RunningServer,
                                                                       waits: list[float]) -> None:
    """A real socket: the HTTP/1.1 library refuses the header (in-process transports do not check headers)."""
    async def go() -> None:
        async with HttpClient(server.base_url, label="test", secrets=["TOPSECRET\n"], headers={
                "X-API-Key": "TOPSECRET\n"}, sleep=lambda s: asyncio.sleep(0, waits.append(s))) as http:  # type: ignore[func-returns-value]
            with pytest.raises(TransportError) as err:
                await http.request("GET", "busy")
            assert "TOPSECRET" not in str(err.value) and "could not be sent" in str(err.value)
            assert http.requests_sent == 1

    asyncio.run(go())
    assert waits == []


def test_a_request_may_lower_the_body_limit_and_hears_the_length_the_answer_declared(waits: list[float]) -> None:
    """e-guma halves (or cuts) a window whose answer is too large: the limit is per request, the answer is refused
    before its body is read when its Content-Length says so, and the error carries both sizes."""

    async def go() -> None:
        async with client(waits) as http:
            whole = await http.request("GET", "html")
            with pytest.raises(TooLargeError) as err:
                await http.request("GET", "html", max_bytes=10)
            assert err.value.limit == 10 and err.value.declared == len(whole.content)
            assert "max_body_mb" in str(err.value) and "\n" not in str(err.value)

    asyncio.run(go())


def test_requests_dropped_while_on_the_wire_never_keep_a_connection_from_the_next_ones() -> None:
    """Read-ahead cancels requests it no longer needs, at any moment. A request cancelled inside httpcore could keep
    its pool slot for good (encode/httpcore#1093): once every slot was kept, the next request waited for a
    connection that never freed, and the sync hung. Two connections; two requests dropped after 0, 1, 2, ... turns
    of the event loop (so at every point of their way), and each time the next request is still answered."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b"[" + b",".join(b'{"id": %d}' % n for n in range(2000)) + b"]"
        try:
            while True:
                if not await read_request_head(reader):
                    return
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def go() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, HttpClient(f"http://127.0.0.1:{port}", label="test",
                                      settings=HttpSettings(max_connections=2, max_retries=0)) as http:
            for turns in range(40):
                dropped = [asyncio.ensure_future(http.request("GET", "orders")) for _ in range(2)]
                for _ in range(turns):
                    await asyncio.sleep(0)
                for task in dropped:
                    task.cancel()
                await asyncio.gather(*dropped, return_exceptions=True)
                answer = await asyncio.wait_for(http.request("GET", "orders"), 10)  # hung for good before the fix
                assert len(answer.json()) == 2000

    asyncio.run(go())
