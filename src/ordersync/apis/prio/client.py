"""Prio Distributor API v3 client: OAuth2 tokens, creation windows and slices, ``If-Modified-Since``.

Plan (one stream, ``orders``):

* every pass walks creation windows of ``window_days`` from ``order_created_from`` to now, always with an explicit
  ``order_created_from``/``order_created_to`` (without one Prio silently returns only the last 3 months);
* windows are read as slices of creation time (to the millisecond, never across a window), sized by the density
  seen to fit in one page, ``concurrency`` slices at once, each sorted ``ASC`` by ``ORDER_CREATED``. A slice whose
  first page is full is read again as smaller slices, down to one millisecond; a millisecond that holds more than
  a page (a bulk import) is read from its last page down, then its first again, so that an order deleted meanwhile
  cannot shift another past the reader. The page size is the one the server answers with, not the one asked;
* incremental passes add ``order_modified`` = the cursor (:func:`ordersync.cursor.next_cursor`; new orders count
  as modified) and, on each window's first request, ``If-Modified-Since`` = the window's stored ``Last-Modified``:
  an unchanged window answers 304 and costs one request.

The state keeps the slices complete and each window's ``Last-Modified``, so an interrupted run reads the rest. It
never holds a token or a secret. The stream is a class, :class:`PrioOrders` (an :class:`ordersync.paging.Stream`):
its passes, the slices of a pass (a :class:`ordersync.paging.SlicePlan` of :class:`ordersync.paging.NumberedPages`),
how a pass is folded into the state; the client keeps the token and answers its requests.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ordersync.apis.base import HttpOptions, SourceClient
from ordersync.apis.prio import normalize
from ordersync.apis.prio.settings import PrioSettings, rfc3339
from ordersync.cursor import later, next_cursor
from ordersync.errors import ApiError, AuthError
from ordersync.http import Response
from ordersync.model import Record, Rows
from ordersync.paging import Answer, Carver, NumberedPages, Request, SlicePlan, Span, Stream, StreamStateWithRun
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


def millis(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class PrioState(StreamStateWithRun):
    """``cursor``: the ``order_modified`` cursor; ``ranges``: each creation range's last ``Last-Modified``."""

    ranges: dict[str, str] = {}

    @classmethod
    def upgrade(cls, legacy: dict[str, Any]) -> dict[str, Any] | None:
        if legacy.get("pending") or legacy.get("cursor") is None:
            return None
        return {"cursor": legacy["cursor"], "ranges": legacy.get("ranges") or {}}


class PrioClient(SourceClient):
    settings: PrioSettings
    clock: Callable[[], float] = staticmethod(time.monotonic)
    """Seconds on which a token's lifetime is counted (a test moves a clock of its own instead of waiting)."""

    def __init__(self, source: str, settings: PrioSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(source, settings, transport)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    @property
    def basic(self) -> str:
        s = self.settings
        return base64.b64encode(
            f"{s.client_id.get_secret_value()}:{s.client_secret.get_secret_value()}".encode()).decode()

    def http_options(self) -> HttpOptions:
        return HttpOptions(label=f"{self.source} (prio)", secrets=[*self.settings.secrets(), self.basic],
                           auth_hint=f"check client_id and client_secret in [sources.{self.source}]")

    def streams(self) -> dict[str, Stream[Any]]:
        return {PrioOrders.name: PrioOrders(self)}

    # --- OAuth2 -------------------------------------------------------------------------------------------
    async def token(self, renew: bool = False, stale: str | None = None) -> str:
        """A valid access token: the cached one until shortly before it expires, else a new one."""
        async with self._token_lock:
            fresh = self._token is not None and self.clock() < self._token_expires
            if fresh and not (renew and self._token == stale):
                assert self._token is not None
                return self._token
            body: dict[str, Any] = {"grant_type": "client_credentials"}
            if self.settings.scope:
                body["scope"] = self.settings.scope
            response = await self.http.request("POST", "oauth2/token", json=body,
                                               headers={"Authorization": f"Basic {self.basic}"})
            answer = response.json()
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise ApiError(f"{response.where} answered without an access_token; is base_url the Prio "
                               "distributor API (…/v3.4/distributor)?")
            self.http.redact.add(token)
            lifetime = float(as_int(answer.get("expires_in")) or 3600)
            margin = min(self.settings.token_margin_seconds, lifetime / 10)
            self._token, self._token_expires = token, self.clock() + lifetime - margin
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
    async def fetch(self, request: Request) -> Answer:
        response = await self.get(request.path, request.params, request.headers or None)
        if response.status == 304:
            return Answer([], not_modified=True)
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ApiError(f"{response.where} answered JSON without the documented data.items list")
        items = data["items"]
        return Answer(response.records(items), total_pages=as_int(data.get("total_pages")),
                      page_size=as_int(data.get("items_per_page")) or len(items) or 1,
                      page_index=as_int(data.get("page_index")), total_items=as_int(data.get("total_items")),
                      last_modified=response.headers.get("last-modified"),
                      size=len(response.content))


class PrioOrders(Stream[PrioState]):
    """The distributor's orders, read by creation windows and slices (the plan in the module's docstring)."""

    name = "orders"
    state = PrioState

    def __init__(self, client: PrioClient) -> None:
        self.client, self.settings = client, client.settings

    # --- what the state is valid for, and the passes of a run ---------------------------------------------
    @property
    def filters(self) -> dict[str, Any]:
        s = self.settings
        return {"order_created_from": s.order_created_from, "order_created_to": s.order_created_to,
                "order_modified": s.order_modified, "window_days": s.window_days, **self.filter_params()}

    @property
    def lookback(self) -> timedelta:
        return timedelta(seconds=self.settings.lookback_seconds)

    def passes(self, state: PrioState) -> list[str]:
        return ["all" if state.cursor is None else "modified"]

    def run_end(self) -> datetime:
        """Where the windows end: the configured end of the creation range, or now plus the look-back (the margin
        for clock skew, here for Prio's clock ahead of ours)."""
        s = self.settings
        return s.created_to() or datetime.now(UTC) + timedelta(seconds=s.lookback_seconds)

    # --- one pass as slices, and the requests of a slice --------------------------------------------------
    def plan(self, kind: str, state: PrioState) -> SlicePlan:
        """The pass as slices of creation time (milliseconds) from ``order_created_from`` to the run's end, within
        the windows whose ``Last-Modified`` the state keeps."""
        s = self.settings
        run = state.run
        assert run is not None and run.end is not None
        incremental = kind == "modified"
        cursor = later(state.cursor, s.modified_after()) if incremental else s.modified_after()
        ranges = windows(s.created_from(), run.end, s.window_days)
        starts = tuple(millis(lo) for lo, _hi in ranges)

        def window(part: Span) -> str:
            return rfc3339(ranges[bisect.bisect_right(starts, part[0]) - 1][0])

        def params(part: Span) -> dict[str, Any]:
            return {**self.filter_params(), "order_created_from": rfc3339(moment(part[0])),
                    "order_created_to": rfc3339(moment(part[1] - 1)),
                    "order_modified": rfc3339(cursor) if cursor else None, "order_sort_by": "ORDER_CREATED",
                    "order_sort_order": "ASC", "items_per_page": s.items_per_page}

        def conditional(part: Span) -> dict[str, str]:
            since = http_date(state.ranges.get(window(part))) if incremental else None
            return {"If-Modified-Since": email.utils.format_datetime(since, usegmt=True)} if since else {}

        def memo(part: Span, last_modified: str | None) -> dict[str, Any]:
            value = last_modified or state.ranges.get(window(part))
            return {f"{window(part)}|{part[0]}": value} if value else {}

        reader = NumberedPages("orders", params, s.items_per_page, self.place, appends_only=True,
                               identity=self.identity, headers=conditional, memo=memo)
        carver = Carver.for_pages(s.items_per_page, boundaries=starts)
        return SlicePlan((starts[0], millis(run.end) + 1) if ranges else (0, 0), reader, carver,
                         concurrency=s.concurrency, place=self.place, path="orders", oldest_first=True)

    def filter_params(self) -> dict[str, Any]:
        """The configured filters, as query parameters every request shares."""
        return {name: getattr(self.settings, name) for name in FILTERS}

    # --- what a record says --------------------------------------------------------------------------------
    def place(self, record: Record) -> int | None:
        """An order's place on the slice axis: its creation millisecond."""
        at = utc(record.get("order_created"))
        return millis(at) if at else None

    def identity(self, record: Record) -> object:
        return record.get("order_reference"), record.get("order_modified")

    def cursor(self, record: Record) -> datetime | None:
        return utc(record.get("order_modified"))

    def normalize(self, record: Record) -> Rows:
        return normalize.order_rows(record)

    # --- a pass's end ----------------------------------------------------------------------------------------
    def finish(self, kind: str, state: PrioState) -> PrioState:
        """The cursor, and each window's ``Last-Modified``: the latest of its slices', never past the run's start
        (a change made while the run read the window is then still newer than it)."""
        run = state.run
        assert run is not None
        cursor = next_cursor(state.cursor, run.seen_max, run.started) or run.started  # never goes back
        latest: dict[str, datetime] = {}
        for key, value in run.memo.items():
            moment_ = http_date(value)
            name = key.split("|")[0]
            if moment_ is not None and (name not in latest or moment_ > latest[name]):
                latest[name] = moment_
        kept = {k: email.utils.format_datetime(min(v, run.started), usegmt=True) for k, v in latest.items()}
        return state.model_copy(update={"cursor": cursor, "ranges": {**state.ranges, **kept}})
