"""e-guma v1 client: the key in the query string, and date windows instead of pages.

The API does not paginate: one answer holds every order matching the date filters. So every request is bounded
by a window ``[updated_at_after, updated_at_before)`` on ``updated_at`` (which equals ``created_at`` at creation,
so these windows also cover new orders). Windows are built on the API's own time axis, zone-less local
wall-clock time, contiguous and non-overlapping there, so the autumn hour that occurs twice is read once (as one
stretch of text) and the spring gap costs nothing. A window whose answer holds more than ``split_threshold``
orders, or that takes longer than ``timeout``, is halved and asked again; after small answers windows widen.
After each window the state is the local cursor (its end), so a run killed half way resumes there, and the next
run continues from it: an order cancelled since then comes back through its new ``updated_at``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx

from ordersync.apis.base import Page, Record, Rows, SourceClient, State
from ordersync.apis.eguma import localtime, normalize
from ordersync.apis.eguma.localtime import FORMAT, parse_local, safe_end
from ordersync.apis.eguma.settings import EgumaSettings
from ordersync.errors import ApiError, TooSlowError
from ordersync.http import HttpClient

PATH = "vouchers/orders.json"
ONE_SECOND = timedelta(seconds=1)


def local(moment: datetime) -> str:
    return moment.strftime(FORMAT)


def half(span: timedelta) -> timedelta:
    return max(ONE_SECOND, timedelta(seconds=int(span.total_seconds()) // 2))


class EgumaClient(SourceClient):
    streams: ClassVar[tuple[str, ...]] = ("orders",)
    settings: EgumaSettings

    def make_http(self, transport: httpx.AsyncBaseTransport | None) -> HttpClient:
        key = self.settings.api_key.get_secret_value()
        return HttpClient(
            self.settings.base_url,
            label=f"{self.source} (eguma)",
            settings=self.settings.http_settings(),
            secrets=[key],
            auth_hint=f"check api_key in [sources.{self.source}]",
            transport=transport,
        )

    def window_params(self, after: datetime, before: datetime) -> dict[str, Any]:
        """The query of one window: the key, the configured creation filters and the window on ``updated_at``."""
        s = self.settings
        return {
            "apikey": s.api_key.get_secret_value(),
            "created_at_after": s.created_at_after,
            "created_at_before": s.created_at_before,
            "updated_at_after": local(after),
            "updated_at_before": local(before),
        }

    async def fetch_window(self, after: datetime, before: datetime) -> list[Record]:
        # A window too slow once will be too slow again: hear of it at once and split it (5xx are still retried).
        response = await self.http.request("GET", PATH, params=self.window_params(after, before), retry_slow=False)
        body = response.json()
        if not isinstance(body, list):
            raise ApiError(f"{response.where} answered a JSON {type(body).__name__}, not the documented list of orders")
        for record in body:
            if not isinstance(record, dict) or not record.get("id"):
                raise ApiError(f"{response.where} answered a list holding {str(record)[:80]!r}, not orders with an id")
        return body

    def window_end(self) -> datetime:
        """Now minus the look-back on the local axis (held at the start of a repeated autumn hour), or the
        configured ``updated_at_before`` if earlier."""
        s = self.settings
        end = safe_end(localtime.utc_now() - timedelta(seconds=s.lookback_seconds), ZoneInfo(s.timezone))
        if s.updated_at_before:
            end = min(end, parse_local(s.updated_at_before) or end)
        return end

    async def read(self, stream: str, state: State | None, full_refresh: bool) -> AsyncIterator[Page]:
        s = self.settings
        state = {} if full_refresh or not state else dict(state)
        lower = s.lower_bound()
        cursor = max(parse_local(state.get("cursor") or "") or lower, lower)
        largest = timedelta(days=s.max_window_days)
        window = timedelta(seconds=state.get("window_seconds") or s.window_days * 86400)
        window = max(ONE_SECOND, min(window, largest))
        end = self.window_end()
        while cursor < end:
            upper = min(cursor + window, end)
            span = upper - cursor
            try:
                records = await self.fetch_window(cursor, upper)
            except TooSlowError:
                if span <= ONE_SECOND:
                    where = self.http.describe("GET", PATH, self.window_params(cursor, upper))
                    raise ApiError(f"{where} took longer than timeout = {s.timeout:g}s even for one second of "
                                   f"orders; raise timeout in [sources.{self.source}]") from None
                window = half(span)
                continue
            if len(records) > s.split_threshold and span > ONE_SECOND:
                window = half(span)
                continue
            cursor = upper
            if len(records) <= s.split_threshold // 4:
                window = min(window * 2, largest)
            yield Page(records, {"cursor": local(cursor), "window_seconds": int(window.total_seconds())})

    def normalize(self, stream: str, records: list[Record]) -> Rows:
        zone = ZoneInfo(self.settings.timezone)
        rows = Rows()
        for record in records:
            rows.extend(normalize.order_rows(record, zone))
        return rows
