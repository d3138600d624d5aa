"""Prio Distributor API v3 client: OAuth2 tokens, creation windows, keyset paging, ``If-Modified-Since``.

Plan (one stream, ``orders``):

* every pass walks creation windows of ``window_days`` from ``order_created_from`` to now, always with an explicit
  ``order_created_from``/``order_created_to`` (without one Prio silently returns only the last 3 months);
* within a window, orders come sorted ``ASC`` by ``ORDER_CREATED``; each request starts at the creation time of
  the last order read (keyset paging), so orders entering or leaving the result while we page (a status filter,
  an ``order_modified`` filter) can never shift an unread order past us; orders already read at that same
  instant are dropped from the next answer. The page size is the one the server answers with, not the one asked;
* incremental passes add ``order_modified`` = the cursor (:func:`ordersync.cursor.next_cursor`; new orders count
  as modified) and, on each window's first request, ``If-Modified-Since`` = the window's stored ``Last-Modified``:
  an unchanged window answers 304 and costs one request.

The state after every page names the window, the keyset position and what has been seen, so an interrupted run
resumes there. It never holds a token or a secret.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from ordersync.apis.base import Page, Record, Rows, SourceClient, State
from ordersync.apis.prio import normalize
from ordersync.apis.prio.settings import PrioSettings, parse_rfc3339, rfc3339
from ordersync.cursor import as_text, from_text, later, next_cursor
from ordersync.errors import ApiError, AuthError
from ordersync.http import HttpClient, Response
from ordersync.values import as_int, utc

FILTERS = (
    "reseller_id", "distributor_id", "market_admin_id", "supplier_id", "order_reference", "order_external_reference",
    "order_status", "order_contact_uid", "order_contact_name", "order_contact_email", "booking_reference",
    "booking_external_reference", "product_id", "product_type_code", "product_availability_id",
    "product_availability_capacity_id", "order_created_email", "order_search_query", "filter_bookings",
    "order_view_type", "cache",
)


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def windows(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """Creation ranges ``[from, to]`` (both inclusive, to the millisecond) covering ``start`` .. ``end``."""
    result = []
    step = timedelta(days=days)
    lo = start
    while lo <= end:
        hi = min(lo + step - timedelta(milliseconds=1), end)
        result.append((lo, hi))
        lo = lo + step
    return result


class PrioClient(SourceClient):
    streams: ClassVar[tuple[str, ...]] = ("orders",)
    settings: PrioSettings

    def __init__(self, source: str, settings: PrioSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(source, settings, transport)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    def make_http(self, transport: httpx.AsyncBaseTransport | None) -> HttpClient:
        s = self.settings
        basic = base64.b64encode(
            f"{s.client_id.get_secret_value()}:{s.client_secret.get_secret_value()}".encode()).decode()
        self._basic = basic
        return HttpClient(
            s.base_url,
            label=f"{self.source} (prio)",
            settings=s.http_settings(),
            secrets=[*s.secrets(), basic],
            auth_hint=f"check client_id and client_secret in [sources.{self.source}]",
            transport=transport,
        )

    # --- OAuth2 -------------------------------------------------------------------------------------------
    async def token(self, renew: bool = False, stale: str | None = None) -> str:
        """A valid access token: the cached one until shortly before it expires, else a new one."""
        async with self._token_lock:
            fresh = self._token is not None and time.monotonic() < self._token_expires
            if fresh and not (renew and self._token == stale):
                assert self._token is not None
                return self._token
            body: dict[str, Any] = {"grant_type": "client_credentials"}
            if self.settings.scope:
                body["scope"] = self.settings.scope
            response = await self.http.request("POST", "oauth2/token", json=body,
                                               headers={"Authorization": f"Basic {self._basic}"})
            answer = response.json()
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise ApiError(f"{response.where} answered without an access_token; is base_url the Prio "
                               "distributor API (…/v3.4/distributor)?")
            self.http.redact.add(token)
            lifetime = float(as_int(answer.get("expires_in")) or 3600)
            margin = min(self.settings.token_margin_seconds, lifetime / 10)
            self._token, self._token_expires = token, time.monotonic() + lifetime - margin
            return token

    async def get(self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        """GET with the bearer token; on 401 renew the token once and retry; 403 means the token was revoked."""
        token = await self.token()
        for attempt in (1, 2):
            try:
                return await self.http.request("GET", path, params=params, ok=(200, 304),
                                               headers={**(headers or {}), "Authorization": f"Bearer {token}"})
            except AuthError as exc:
                if exc.status == 403:
                    raise AuthError(f"{exc}; Prio answers 403 when the access token or the API client has been "
                                    f"revoked: ask Prio to re-activate it or issue new credentials", 403) from None
                if exc.status != 401 or attempt == 2:
                    raise AuthError(f"{exc} (a freshly issued token was refused too)", exc.status) from None
                token = await self.token(renew=True, stale=token)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- requests -----------------------------------------------------------------------------------------
    def filter_params(self) -> dict[str, Any]:
        return {name: getattr(self.settings, name) for name in FILTERS}

    async def fetch(self, params: dict[str, Any], since: datetime | None) -> tuple[Response, dict[str, Any] | None]:
        headers = {"If-Modified-Since": email.utils.format_datetime(since, usegmt=True)} if since else None
        response = await self.get("orders", params, headers)
        if response.status == 304:
            return response, None
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ApiError(f"{response.where} answered JSON without the documented data.items list")
        return response, data

    async def read(self, stream: str, state: State | None, full_refresh: bool) -> AsyncIterator[Page]:
        s = self.settings
        state = {} if full_refresh or not state else dict(state)
        pending = state.get("pending")
        if not pending:
            now = datetime.now(UTC)
            end = s.created_to() or now + timedelta(seconds=s.lookback_seconds)
            pending = {"started": as_text(now - timedelta(seconds=s.lookback_seconds)), "end": rfc3339(end),
                       "incremental": state.get("cursor") is not None, "window": 0, "from": None, "skip": [],
                       "page": 1, "items_per_page": None, "seen_max": None, "window_lm": None,
                       "last_modified": {}}
        started = from_text(pending["started"])
        assert started is not None
        spans = windows(s.created_from(), parse_rfc3339(pending["end"]), s.window_days)
        cursor = later(from_text(state.get("cursor")), s.modified_after()) if pending["incremental"] \
            else s.modified_after()
        ranges: dict[str, str] = dict(state.get("ranges") or {})
        while pending["window"] < len(spans):
            lo, hi = spans[pending["window"]]
            key = rfc3339(lo)
            bound = from_text(pending["from"]) or lo
            params = {**self.filter_params(), "order_created_from": rfc3339(bound), "order_created_to": rfc3339(hi),
                      "order_modified": rfc3339(cursor) if cursor else None, "order_sort_by": "ORDER_CREATED",
                      "order_sort_order": "ASC", "items_per_page": pending["items_per_page"] or s.items_per_page,
                      "page": pending["page"]}
            first = pending["from"] is None and pending["page"] == 1
            since = http_date(ranges.get(key)) if first and pending["incremental"] else None
            response, data = await self.fetch(params, since)
            pending = dict(pending)
            records: list[Record] = []
            done = data is None
            if first:
                pending["window_lm"] = response.headers.get("last-modified") if data is not None else ranges.get(key)
            if data is not None:
                answered = [r for r in data["items"] if isinstance(r, dict)]
                skip = set(pending["skip"])
                records = [r for r in answered if str(r.get("order_reference")) not in skip]
                page_size = as_int(data.get("items_per_page")) or len(answered) or 1
                total_pages = as_int(data.get("total_pages"))
                page_index = as_int(data.get("page_index")) or pending["page"]
                done = len(data["items"]) < page_size or (total_pages is not None and page_index >= total_pages)
                seen = from_text(pending["seen_max"])
                for record in records:
                    seen = later(seen, utc(record.get("order_modified")))
                pending["seen_max"] = as_text(seen)
                if not done:
                    pending.update(self.advance(pending, answered, bound, page_size))
            if done:
                lm = http_date(pending["window_lm"])
                if lm is not None:
                    pending["last_modified"] = {**pending["last_modified"], key: email.utils.format_datetime(
                        min(lm, started), usegmt=True)}
                pending.update({"window": pending["window"] + 1, "from": None, "skip": [], "page": 1,
                                "window_lm": None})
            if pending["window"] >= len(spans):
                state = self.finish(state, pending, started, ranges)
            else:
                state = {**state, "pending": pending}
            yield Page(records, dict(state))

    @staticmethod
    def advance(pending: dict[str, Any], answered: list[Record], bound: datetime, page_size: int) -> dict[str, Any]:
        """The next keyset position: from the last creation time read, or the next page if all share ``bound``."""
        created = [utc(r.get("order_created")) for r in answered]
        last = created[-1] if created else None
        if last is None or last <= bound:
            return {"page": pending["page"] + 1, "items_per_page": page_size,
                    "skip": sorted({*pending["skip"], *(str(r.get("order_reference")) for r in answered)})}
        at_last = [str(r.get("order_reference")) for r, c in zip(answered, created, strict=True) if c == last]
        return {"from": rfc3339(last), "page": 1, "items_per_page": page_size, "skip": at_last}

    @staticmethod
    def finish(state: State, pending: dict[str, Any], started: datetime, ranges: dict[str, str]) -> State:
        previous = from_text(state.get("cursor"))
        cursor = next_cursor(previous, from_text(pending["seen_max"]), started) or started  # never goes back
        return {"cursor": as_text(cursor), "ranges": {**ranges, **pending["last_modified"]}, "pending": None}

    def normalize(self, stream: str, records: list[Record]) -> Rows:
        rows = Rows()
        for record in records:
            if isinstance(record, dict):
                rows.extend(normalize.order_rows(record))
        return rows
