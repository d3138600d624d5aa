"""Frontcore v2 client: headers, filters, page-number paging and the incremental plan.

Plan per stream (orders, customers):

* first run (or ``--full-refresh``): one pass over everything the filters allow;
* later runs: a ``new`` pass with ``since_id`` = the highest id stored (new orders can have
  ``updated_at: null``, which no ``updated_at_min`` filter returns), then an ``updated`` pass with
  ``updated_at_min`` = the time cursor (see :mod:`ordersync.cursor`).

After every page the state names the pass and the next page, so a run killed half way resumes there;
page shifts caused by new orders only repeat rows (upserted), they never skip one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx

from ordersync.apis.base import Page, Record, Rows, SourceClient, State
from ordersync.apis.frontcore import normalize
from ordersync.apis.frontcore.settings import FrontcoreSettings
from ordersync.cursor import as_text, from_text, later, next_cursor
from ordersync.errors import ApiError
from ordersync.http import HttpClient
from ordersync.paging import numbered_pages, short_page
from ordersync.values import as_int, utc


@dataclass(frozen=True)
class StreamSpec:
    path: str
    date_filters: tuple[str, ...]


STREAMS = {
    "orders": StreamSpec("orders", ("created_at", "updated_at", "exported_at")),
    "customers": StreamSpec("customers", ("created_at", "updated_at")),
}


def local_param(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as the zone-less local time Frontcore expects, never later than ``moment`` however it is read
    (in the autumn hour that occurs twice, the earlier reading is sent)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    readings = (local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1))
    if any(r.astimezone(UTC) > moment for r in readings):
        local -= timedelta(hours=1)
    return local.strftime("%Y-%m-%d %H:%M:%S")


class FrontcoreClient(SourceClient):
    streams: ClassVar[tuple[str, ...]] = ("orders", "customers")
    settings: FrontcoreSettings

    def make_http(self, transport: httpx.AsyncBaseTransport | None) -> HttpClient:
        key = self.settings.api_key.get_secret_value()
        return HttpClient(
            self.settings.base_url,
            label=f"{self.source} (frontcore)",
            settings=self.settings.http_settings(),
            headers={"X-API-Key": key},
            secrets=[key],
            auth_hint=f"check api_key in [sources.{self.source}]",
            transport=transport,
        )

    def filter_params(self, stream: str) -> dict[str, Any]:
        s = self.settings
        params: dict[str, Any] = {"limit": s.limit}
        for field in STREAMS[stream].date_filters:
            for suffix in ("min", "max"):
                params[f"{field}_{suffix}"] = getattr(s, f"{field}_{suffix}")
        if s.since_id is not None:
            params["since_id"] = s.since_id
        if stream == "orders":
            params.update({"course_id": s.course_id, "user_data": s.user_data, "exported": s.exported,
                           "include[]": list(s.include) or None})
        else:
            params["include[]"] = list(s.customer_include) or None
        return params

    async def fetch_page(self, stream: str, params: dict[str, Any], page: int) -> list[Record]:
        response = await self.http.request("GET", STREAMS[stream].path, params={**params, "page": page})
        body = response.json()
        if not isinstance(body, list):
            kind = type(body).__name__
            raise ApiError(f"{response.where} answered a JSON {kind}, not the documented list of records")
        return body

    async def read(self, stream: str, state: State | None, full_refresh: bool) -> AsyncIterator[Page]:
        zone = ZoneInfo(self.settings.timezone)
        state = {} if full_refresh or not state else dict(state)
        pending = state.get("pending")
        if not pending:
            started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=self.settings.lookback_seconds)
            passes = ["all"] if state.get("max_id") is None else ["new", "updated"]
            pending = {"passes": passes, "index": 0, "page": 1, "seen_max_id": None, "seen_max_time": None,
                       "started": as_text(started)}
        while pending["index"] < len(pending["passes"]):
            kind = pending["passes"][pending["index"]]
            params = self.pass_params(stream, kind, state, zone)
            limit = self.settings.limit
            pages = numbered_pages(
                functools.partial(self.fetch_page, stream, params),
                first_page=pending["page"],
                is_last=short_page(limit),
                concurrency=self.settings.concurrency,
            )
            async for page_no, records in pages:
                pending = self.after_page(pending, kind, records, page_no)
                if len(records) < limit:
                    state = self.finish_pass(state, pending, kind)
                    pending = {**pending, "index": pending["index"] + 1, "page": 1, "seen_max_id": None,
                               "seen_max_time": None}
                state["pending"] = pending if pending["index"] < len(pending["passes"]) else None
                yield Page(records, dict(state))

    def pass_params(self, stream: str, kind: str, state: State, zone: ZoneInfo) -> dict[str, Any]:
        params = self.filter_params(stream)
        if kind == "new":
            params["since_id"] = max(state["max_id"], self.settings.since_id or 0)
        elif kind == "updated":
            cursor = from_text(state.get("time_cursor"))
            configured = utc(params.get("updated_at_min"), zone)
            if cursor and (configured is None or cursor > configured):
                params["updated_at_min"] = local_param(cursor, zone)
        return params

    @staticmethod
    def after_page(pending: dict[str, Any], kind: str, records: list[Record], page_no: int) -> dict[str, Any]:
        max_id = as_int(pending["seen_max_id"])
        max_time = from_text(pending["seen_max_time"])
        for record in records:
            record_id = as_int(record.get("id"))
            if record_id is not None and (max_id is None or record_id > max_id):
                max_id = record_id
            changed = utc(record.get("updated_at")) or utc(record.get("created_at"))
            max_time = later(max_time, changed)
        return {**pending, "page": page_no + 1, "seen_max_id": max_id, "seen_max_time": as_text(max_time)}

    @staticmethod
    def finish_pass(state: State, pending: dict[str, Any], kind: str) -> State:
        state = dict(state)
        started = from_text(pending["started"])
        assert started is not None
        if kind in ("all", "new"):
            ids = [i for i in (state.get("max_id"), pending["seen_max_id"]) if i is not None]
            state["max_id"] = max(ids) if ids else 0
        if kind in ("all", "updated"):
            previous = from_text(state.get("time_cursor"))
            seen = from_text(pending["seen_max_time"])
            cursor = next_cursor(previous, seen, started)
            state["time_cursor"] = as_text(cursor or (started if kind == "all" else None))
        return state

    def normalize(self, stream: str, records: list[Record]) -> Rows:
        rows = Rows()
        convert = normalize.order_rows if stream == "orders" else normalize.customer_rows
        for record in records:
            rows.extend(convert(record))
        return rows
