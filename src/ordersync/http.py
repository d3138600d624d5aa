"""The one place that speaks HTTP: timeouts, retries with backoff, Retry-After, rate limits, redaction.

Every API client goes through :class:`HttpClient`, so that a secret registered here can never leak through
an error message, a log line or a progress label, whichever API it belongs to.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import errno
import json
import logging
import re
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from ordersync import jsontext
from ordersync.decoding import Decoder, UnsupportedEncoding
from ordersync.errors import ApiError, AuthError, NotJsonError, TooLargeError, TooSlowError, TransportError
from ordersync.tasks import cancel_all

log = logging.getLogger("ordersync.http")
# httpx logs every request URL at INFO; e-guma's key travels in the URL, so keep httpx quiet.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

MB = 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDACTED = "***"


RATE_MARGIN = 1.04  # requests are spaced this much wider than the configured rate allows: a request that leaves
# a little late (the event loop was busy) must not land within one window of the last one the window allows


@dataclass(frozen=True)
class HttpSettings:
    """Knobs of the HTTP layer; each is a source setting with this default."""

    timeout: float = 30.0
    max_retries: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    requests_per_second: float | None = None
    max_connections: int = 8
    max_body_bytes: int = 64 * 1024 * 1024  # a larger answer is refused, not read (setting ``max_body_mb``)


class Redactor:
    """Replaces every registered secret by ``***`` in every form a message can carry it: as it is, URL-encoded,
    escaped as in ``repr`` of text or of bytes (``Illegal header value b'...\\n'``), JSON-escaped, without the
    whitespace around it, and base64-encoded (standard or URL-safe, alone or inside a longer value such as a Basic
    header's ``id:secret``); in any case (a vendor may echo a key upper-cased); and in part: any run of at least
    half a form's characters, and at least :data:`MIN_RUN` (a whole form when it is shorter), is replaced, so that
    a key cut short or padded out by the vendor is hidden too. A shorter run cannot identify a secret."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._forms: dict[str, None] = {}  # every form of every secret, in the order added
        self._seeds: dict[str, list[tuple[str, int]]] = {}  # a seed (lower case) -> (a form holding it, offset)
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret.strip()) < 3:
            return
        forms = _escaped_forms(secret) | _escaped_forms(secret.strip()) | _base64_forms(secret.strip())
        for form in sorted(forms - self._forms.keys(), key=len, reverse=True):
            self._forms[form] = None
            # Seeds: the form cut in pieces of half a run; every run of the form holds one whole piece.
            piece = (_run_length(form) + 1) // 2
            for offset in range(0, len(form) - piece + 1, piece):
                self._seeds.setdefault(form[offset:offset + piece].lower(), []).append((form, offset))
        seeds = "|".join(map(re.escape, sorted(self._seeds, key=len, reverse=True)))
        self._pattern = re.compile(f"(?=({seeds}))", re.IGNORECASE) if seeds else None  # overlapping matches

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        spans: list[tuple[int, int]] = []
        for match in self._pattern.finditer(text):
            for form, offset in self._seeds[match.group(1).lower()]:
                start, end = _widened(text, match.start(), match.end(1), form, offset)
                if end - start >= _run_length(form):
                    spans.append((start, end))
        if not spans:
            return text
        pieces, at = [], 0
        for start, end in _merged(spans):
            pieces += [text[at:start], REDACTED]
            at = end
        return "".join(pieces) + text[at:]


MIN_RUN = 8
"""The shortest part of a secret that is redacted on its own (a secret shorter than this only whole)."""


def _run_length(form: str) -> int:
    return min(len(form), max(MIN_RUN, (len(form) + 1) // 2))


def _widened(text: str, start: int, end: int, form: str, offset: int) -> tuple[int, int]:
    """The span ``[start, end)`` of ``text`` (``form[offset:...]``) widened to all of ``form`` that matches there."""
    left, right = start, end
    while left > 0 and left - start + offset > 0 and text[left - 1].lower() == form[left - start + offset - 1].lower():
        left -= 1
    while right < len(text) and right - start + offset < len(form) and \
            text[right].lower() == form[right - start + offset].lower():
        right += 1
    return left, right


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _escaped_forms(secret: str) -> set[str]:
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        repr(secret)[1:-1],
        repr(secret.encode("utf-8", "surrogateescape"))[2:-1],
        orjson.dumps(secret).decode()[1:-1],
        json.dumps(secret)[1:-1],  # ASCII-escaped, as the standard library writes it
    }


def _base64_forms(secret: str) -> set[str]:
    """The secret's base64 as it appears inside any base64 text: at each of the three alignments a value can start
    at (``id:secret`` puts it at any), only the characters that depend on the secret's bytes alone; and the whole
    padded encoding of the secret by itself. Standard and URL-safe alphabets."""
    data = secret.encode("utf-8", "surrogateescape")
    forms = {base64.b64encode(data).decode()}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data + bytes(2)).decode()
        first, last = -(-shift * 8 // 6), (shift + len(data)) * 8 // 6  # characters made of the secret's bits only
        forms.add(encoded[first:last])
    return {f for form in forms for f in (form, form.translate(_URLSAFE))}


_URLSAFE = str.maketrans("+/", "-_")


@dataclass
class Response:
    """A finished answer: status, headers and the whole body."""

    status: int
    headers: httpx.Headers
    content: bytes
    where: str  # "GET /path?query" with secrets redacted, for messages
    sent: int = 0  # this client's count of requests when the attempt that got this answer was sent
    _json: Any = field(default=None, repr=False)
    lenient: bool = False  # the body was read by the lenient parser: its records must pass :meth:`records`

    def json(self) -> Any:
        """The body parsed (see :mod:`ordersync.jsontext`: one bad value spoils its record, not the page)."""
        if self._json is None:
            try:
                self._json, self.lenient = jsontext.loads(self.content)
            except jsontext.NotJson:
                ctype = self.headers.get("content-type", "no content type")
                head = self.content[:120].decode("utf-8", "replace")
                raise NotJsonError(
                    f"{self.where} answered HTTP {self.status} with a body that is not JSON ({ctype}): {head!r}",
                    self.status,
                ) from None
        return self._json

    def records(self, items: list[Any]) -> list[Any]:
        """The list of records ``items`` (from :meth:`json`), each element that cannot be a record (``null``, a
        number, a record holding a lone surrogate or a number beyond a double) replaced by a
        :class:`~ordersync.jsontext.Unreadable`, which is rejected alone."""
        return jsontext.records(items, self.lenient)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def vendor_message(content: bytes) -> str:
    """The vendor's own error text from a JSON or plain-text error body."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        for key in ("error_description", "error", "detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            parts = [str(first[k]) for k in ("source", "detail", "message") if first.get(k)]
            if parts:
                return ": ".join(parts)
    return content[:200].decode("utf-8", "replace").strip()


class HttpClient:
    """An ``httpx.AsyncClient`` with the behaviour every API client needs."""

    def __init__(
        self,
        base_url: str,
        *,
        label: str,
        settings: HttpSettings | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        auth_hint: str = "check the credentials in the configuration",
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.label = label
        self.answered = False  # whether any request got an answer it asked for (a 404 before that: a wrong base_url)
        self._sleep = sleep or asyncio.sleep  # tests inject theirs: waits are then observed, not lived through
        self.settings = settings or HttpSettings()
        self.redact = Redactor(secrets)
        self.auth_hint = auth_hint
        self._base_path = httpx.URL(base_url).path.rstrip("/")
        rps = self.settings.requests_per_second
        # One request per 1/rps seconds: even spacing, no bursts (Frontcore discourages them), 2% wider than the
        # limit so that jitter on the way never puts rps + 1 requests into one second of the server's clock.
        self._limiter = AsyncLimiter(1, RATE_MARGIN / rps) if rps else None
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            # only the encodings :mod:`ordersync.decoding` decodes with a bound (httpx would add br with brotli)
            headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "User-Agent": "ordersync",
                     **(headers or {})},
            auth=auth,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=self.settings.max_connections),
            transport=transport,
        )
        self.requests_sent = 0
        self._exchanges: set[asyncio.Task[tuple[httpx.Response, bytes]]] = set()  # requests on the wire
        self._slots = asyncio.Semaphore(self.settings.max_connections)  # held from before the rate limit to the end

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await cancel_all(self._exchanges)  # abandoned requests still on the wire: the pool goes too, no leak matters
        await self._client.aclose()

    def describe(self, method: str, path: str, params: Mapping[str, Any] | None) -> str:
        query = urllib.parse.urlencode(_flatten(params), doseq=True) if params else ""
        where = f"{method} {self._base_path}/{path.lstrip('/')}" + (f"?{query}" if query else "")
        return f"{self.label}: " + self.redact(where)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        ok: Iterable[int] = (200,),
        retry_slow: bool = True,
        max_bytes: int | None = None,
    ) -> Response:
        """Send one request, retrying what is worth retrying; raise a clear error for any other answer.

        With ``retry_slow=False`` an answer slower than the timeout raises :class:`TooSlowError` at once.
        ``max_bytes`` lowers the body limit for this request (:class:`TooLargeError` past it, never read whole).
        """
        ok_statuses = frozenset(ok)
        where = self.describe(method, path, params)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1) | stop_when(_refused_enough),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
            sleep=self._sleep,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send_once(method, path, params, headers, json, ok_statuses, where, retry_slow,
                                                 max_bytes)
        except _Refused:
            raise TransportError(f"{where} failed: nothing listens at {self._host_port()} (connection refused, "
                                 f"{min(REFUSED_ATTEMPTS, self.settings.max_retries + 1)} attempts); check base_url "
                                 f"in [sources.{self.source}]") from None
        except _Retryable as exc:
            if exc.status is None:
                raise TransportError(f"{where} failed after {self.settings.max_retries + 1} attempts: {exc} "
                                     f"({self._host_port()}); check base_url in [sources.{self.source}] and the "
                                     "network") from None
            raise ApiError(
                f"{where} answered {exc} after {self.settings.max_retries + 1} attempts; "
                "the API is overloaded or failing, try again later",
                exc.status,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        ok_statuses: frozenset[int],
        where: str,
        retry_slow: bool = True,
        max_bytes: int | None = None,
    ) -> Response:
        await self._slots.acquire()  # a request dropped by its caller keeps its slot until its answer is in
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
        except BaseException:
            self._slots.release()
            raise
        self.requests_sent += 1
        sent = self.requests_sent
        log.debug("%s", where)
        try:
            raw, content = await self._finished(self._exchange(method, path, params, headers, json, where, max_bytes))
        except (httpx.ReadTimeout, TimeoutError):  # TimeoutError: the whole exchange passed its deadline
            if not retry_slow:
                raise TooSlowError(f"{where} took longer than {self.settings.timeout:g}s") from None
            raise _Retryable(f"timed out after {self.settings.timeout:g}s") from None
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {self.settings.timeout:g}s") from None
        except httpx.ConnectError as exc:
            if _unknown_host(exc):  # no retry can make a name resolve: say which host, at once
                host = self.redact(self._client.base_url.host)
                raise TransportError(f"{where} failed: the host {host} is unknown (DNS lookup failed); check "
                                     f"base_url") from None
            kind = _Refused if _refused(exc) else _Retryable  # a closed port: a few quick tries, not a backoff
            raise kind(self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from None
        except UnsupportedEncoding as exc:  # the same answer would come back: no retry
            raise TransportError(f"{where}: {exc}") from None
        except httpx.DecodingError as exc:  # a body cut or damaged on the way: worth another try
            raise _Retryable(self.redact(str(exc))) from None
        except httpx.LocalProtocolError as exc:  # a request we cannot send (a bad header value): no retry helps
            raise TransportError(self.redact(f"{where} could not be sent: {exc}; {self.auth_hint}")) from None
        except httpx.TransportError as exc:
            raise _Retryable(self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from None
        response = Response(raw.status_code, raw.headers, content, where, sent)
        if raw.status_code in ok_statuses:
            self.answered = True
            return response
        message = self.redact(vendor_message(content))
        if raw.status_code in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {raw.status_code} ({message})" if message else f"HTTP {raw.status_code}",
                parse_retry_after(raw.headers.get("retry-after")),
                raw.status_code,
            )
        if raw.status_code in (401, 403):
            raise AuthError(
                f"{where} was refused with HTTP {raw.status_code}: {message or 'no message'}; {self.auth_hint}",
                raw.status_code,
            )
        hint = ""
        if raw.status_code == 404 and not self.answered:  # the source's very first answers: the path is wrong
            hint = (f"; a 404 before any answer usually means a wrong base URL: check base_url in "
                    f"[sources.{self.source}] (it is {self.redact(str(self._client.base_url))})")
        raise ApiError(f"{where} answered HTTP {raw.status_code}: {message or 'no message'}{hint}", raw.status_code)

    async def _exchange(self, method: str, path: str, params: Mapping[str, Any] | None,
                        headers: Mapping[str, str] | None, json: Any, where: str,
                        max_bytes: int | None) -> tuple[httpx.Response, bytes]:
        """One request and its whole (capped) body, through httpx, within ``timeout`` seconds in all: httpx's own
        time-out bounds each read, so a server sending one byte a second (headers or body) would hold it for ever.
        The deadline ends the exchange inside its own task (see :meth:`_finished`), closing its connection."""
        async with asyncio.timeout(self.settings.timeout), self._client.stream(
            method, path.lstrip("/"), params=_flatten(params), headers=headers, json=json
        ) as raw:
            return raw, await self._read_capped(raw, where, max_bytes)

    async def _finished(self, exchange: Coroutine[Any, Any, tuple[httpx.Response, bytes]],
                        ) -> tuple[httpx.Response, bytes]:
        """Run ``exchange`` to its end even when the caller is cancelled (a run that fails or stops cancels the
        slices in flight): a request cancelled inside httpcore can keep its pool slot for good (encode/httpcore#1093,
        httpx#1461), and after ``max_connections`` of those every later request waits for a connection that never
        frees. A dropped request's answer is read and thrown away; its error is not anyone's. Its slot (taken by
        the caller) frees when it ends: never more than ``max_connections`` requests are on the wire, whatever the
        transport."""
        task = asyncio.ensure_future(exchange)
        self._exchanges.add(task)
        task.add_done_callback(_forget(self._exchanges, self._slots))
        return await asyncio.shield(task)

    async def _read_capped(self, raw: httpx.Response, where: str, max_bytes: int | None = None) -> bytes:
        """The body, read in chunks and decoded here (:mod:`ordersync.decoding`), not by httpx, whose decoders
        inflate a whole chunk with no bound: past ``max_body_bytes``, as sent or as decoded, the answer is refused
        while it is read or inflated, whatever its encoding or layers of encodings."""
        cap = min(self.settings.max_body_bytes, max_bytes or self.settings.max_body_bytes)
        declared = raw.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(where, cap, int(declared))
        if raw.is_stream_consumed:  # built from bytes in memory (a mock transport in tests): httpx decoded them
            _collect((raw.content,), [], 0, cap, where)
            return raw.content
        decoder = Decoder(raw.headers.get("content-encoding"))
        chunks: list[bytes] = []
        size = sent = 0
        async for chunk in raw.aiter_raw():
            sent += len(chunk)
            if sent > cap:
                raise self._too_large(where, cap)
            size = _collect(decoder.decode(chunk), chunks, size, cap, where)
        _collect(decoder.flush(), chunks, size, cap, where)
        return b"".join(chunks)

    @staticmethod
    def _too_large(where: str, cap: int, declared: int | None = None) -> TooLargeError:
        return TooLargeError(f"{where} answered more than {cap / MB:g} MB, the limit set by max_body_mb; raise "
                             "max_body_mb in the source's section if such answers are expected (or ask for smaller "
                             "pages)", limit=cap, declared=declared)

    @property
    def source(self) -> str:
        """The configured source's name (the label is ``NAME (api)``), for "check base_url in [sources.NAME]"."""
        return self.label.split(" (", 1)[0]

    def _host_port(self) -> str:
        url = self._client.base_url
        return f"{self.redact(url.host)}:{url.port or (443 if url.scheme == 'https' else 80)}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Refused):
            return REFUSED_WAIT
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.settings.backoff_max)
        backoff = wait_random_exponential(multiplier=self.settings.backoff_initial, max=self.settings.backoff_max)
        return float(backoff(state))


def _collect(pieces: Iterable[bytes], chunks: list[bytes], size: int, cap: int, where: str) -> int:
    """Append decoded ``pieces`` to ``chunks`` until the body passes ``cap`` bytes; the new size."""
    for piece in pieces:
        size += len(piece)
        if size > cap:
            raise HttpClient._too_large(where, cap)
        chunks.append(piece)
    return size


def _forget(tasks: set[asyncio.Task[Any]], slots: asyncio.Semaphore) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        slots.release()
        if not task.cancelled():
            task.exception()  # retrieved: the caller saw it, or had gone (nobody is owed it)
    return done


class _Refused(_Retryable):
    """The connection was refused: nothing listens there (a wrong base_url's port, a server not started)."""


REFUSED_ATTEMPTS = 3
REFUSED_WAIT = 0.2
"""A refused connection is tried this many times this far apart (a server restarting takes its port back fast;
a wrong port never answers), not with the backoff of a failing server."""


def _refused_enough(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    return isinstance(exc, _Refused) and state.attempt_number >= REFUSED_ATTEMPTS


class stop_when(stop_base):  # noqa: N801 - named as tenacity's own stop conditions
    """A tenacity stop condition from a function of the retry state."""

    def __init__(self, condition: Callable[[RetryCallState], bool]) -> None:
        self.condition = condition

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.condition(retry_state)


def _refused(exc: BaseException) -> bool:
    """Whether a connection failed because nothing listens on the port (ECONNREFUSED anywhere in the chain)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection refused" in str(exc).lower()


def _unknown_host(exc: BaseException) -> bool:
    """Whether a connection failed because the host name does not resolve (not a DNS server that is unreachable
    for now, ``EAI_AGAIN``, which is worth a retry)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return seen.errno != socket.EAI_AGAIN
        seen = seen.__cause__ or seen.__context__
    return False


def _flatten(params: Mapping[str, Any] | None) -> list[tuple[str, str | int | float | bool | None]]:
    """Query parameters as pairs: lists repeat the key (``include[]=a&include[]=b``), None is dropped."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((key, str(item)))
    return pairs
