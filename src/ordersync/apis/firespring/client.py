"""Firespring client: Basic auth, the version header, filters, paging by ``meta.pagination`` and the look-back plan.

Firespring has no "updated since" filter, so the plan is one pass per run over a range of creation dates:

* first run (or ``--full-refresh``, or after a change of the filters): every order the filters allow;
* later runs: ``date_start`` = the newest ``date_created`` stored minus ``lookback_days`` (and one more day of
  margin for the API's reading of a date), so new orders and status changes of recent orders are seen.

Pages are read in ``date_created`` ascending order (our default), so orders created while a pass pages land at the
end and never shift a page already read; the page count is known after the first page and the rest are read
ahead. After every page the state names the window and the next page, so a run killed half way resumes there.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from ordersync.apis.base import Page, Record, Rows, SourceClient, State
from ordersync.apis.firespring import normalize
from ordersync.apis.firespring.settings import FirespringSettings
from ordersync.cursor import as_text, from_text, later
from ordersync.errors import ApiError
from ordersync.http import HttpClient
from ordersync.paging import numbered_pages
from ordersync.values import as_int, utc


@dataclass
class Answer:
    """One page of the list: its records and the page count the API announced with it."""

    records: list[Record]
    total_pages: int
    total: int


class FirespringClient(SourceClient):
    streams: ClassVar[tuple[str, ...]] = ("orders",)
    settings: FirespringSettings

    def make_http(self, transport: httpx.AsyncBaseTransport | None) -> HttpClient:
        key = self.settings.api_key.get_secret_value()
        return HttpClient(
            self.settings.base_url,
            label=f"{self.source} (firespring)",
            settings=self.settings.http_settings(),
            headers={"Firespring-Api-Version": str(self.settings.api_version)},
            auth=httpx.BasicAuth(key, ""),
            secrets=[key, base64.b64encode(f"{key}:".encode()).decode()],
            auth_hint=f"check api_key in [sources.{self.source}] (Basic auth, the key as user name)",
            transport=transport,
        )

    @property
    def path(self) -> str:
        return f"websites/{self.settings.website_id}/orders"

    def filters(self) -> dict[str, Any]:
        """The request parameters every page of every pass shares (``date_start`` and ``page`` are added)."""
        s = self.settings
        return {"count": s.count, "sort": s.sort, "direction": s.direction, "status": s.status, "search": s.search,
                "date_end": s.date_end, "includes": s.all_includes()}

    def signature(self) -> str:
        """What the stored state is valid for: another website or other filters start over."""
        s = self.settings
        return f"{s.website_id}|{s.status}|{s.search}|{s.date_start}|{s.date_end}|{s.sort}|{s.direction}"

    def window_start(self, newest: datetime | None) -> str | None:
        """``date_start`` of an incremental pass: the look-back window below the newest order stored."""
        configured = self.settings.date_start
        if newest is None:
            return configured
        start = ((newest - timedelta(days=self.settings.lookback_days)).date() - timedelta(days=1)).isoformat()
        return max(start, configured) if configured else start

    async def fetch_page(self, params: dict[str, Any], page: int) -> Answer:
        try:
            response = await self.http.request("GET", self.path, params={**params, "page": page})
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(f"{exc}; check website_id in [sources.{self.source}]", 404) from None
            raise
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        meta = body.get("meta") if isinstance(body, dict) else None
        pagination = meta.get("pagination") if isinstance(meta, dict) else None
        total_pages = as_int(pagination.get("total_pages")) if isinstance(pagination, dict) else None
        if not isinstance(data, list) or total_pages is None or not isinstance(pagination, dict):
            raise ApiError(f"{response.where} answered without the documented 'data' list and 'meta.pagination'")
        return Answer(data, total_pages, as_int(pagination.get("total")) or 0)

    async def read(self, stream: str, state: State | None, full_refresh: bool) -> AsyncIterator[Page]:
        signature = self.signature()
        if full_refresh or not state or state.get("filters") != signature:
            state = {}
        newest = from_text(state.get("newest"))
        plan: dict[str, Any] = state.get("pending") or {
            "date_start": self.window_start(newest), "page": 1, "seen_newest": None}
        params = {**self.filters(), "date_start": plan["date_start"]}

        def page_of(page_no: int, answer: Answer) -> tuple[Page, bool]:
            """The page with the state that is true once it is stored; and whether the pass is complete."""
            nonlocal newest, plan
            seen = from_text(plan["seen_newest"])
            for record in answer.records:
                seen = later(seen, utc(record.get("date_created")))
            done = page_no >= answer.total_pages or not answer.records
            plan = {**plan, "page": page_no + 1, "seen_newest": as_text(seen)}
            if done:
                newest = later(newest, seen)
            page_state = {"filters": signature, "newest": as_text(newest), "pending": None if done else plan}
            return Page(answer.records, page_state), done

        first = plan["page"]
        answer = await self.fetch_page(params, first)
        announced = answer.total_pages
        page, done = page_of(first, answer)
        yield page
        while not done:
            # Read ahead up to the last page announced; if orders arrived meanwhile, the answers announce more.
            start = plan["page"]
            async for page_no, answer in numbered_pages(
                lambda n: self.fetch_page(params, n),
                first_page=start,
                is_last=lambda n, a: n >= a.total_pages or not a.records,
                concurrency=self.settings.concurrency,
                last_page=max(start, announced),
            ):
                announced = max(announced, answer.total_pages)
                page, done = page_of(page_no, answer)
                yield page

    def normalize(self, stream: str, records: list[Record]) -> Rows:
        rows = Rows()
        for record in records:
            rows.extend(normalize.order_rows(record))
        return rows
