"""Firespring client: Basic auth, the version header, filters, paging by ``meta.pagination`` and the look-back plan.

Firespring has no "updated since" filter, so the plan is one pass per run over a range of creation dates:

* first run (or ``--full-refresh``, or after a change of the filters): every order the filters allow;
* later runs: ``date_start`` = the newest ``date_created`` stored minus ``lookback_days`` (and one more day of
  margin for the API's reading of a date), so new orders and status changes of recent orders are seen;
* and a ``sweep`` pass over one slice of the older creation days (``date_start``/``date_end``), so that a change to
  an old order is seen within ``sweep_days`` (see :class:`ordersync.paging.RollingSweep`).

Pages are read in ``date_created`` ascending order (our default), so orders created while a pass pages land at the
end and never shift a page already read; the page count is known after the first page and the rest are read
ahead. After every page the state names the window and the next page, so a run killed half way resumes there.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from ordersync.apis.base import HttpOptions, SourceClient
from ordersync.apis.firespring import normalize
from ordersync.apis.firespring.settings import FirespringSettings
from ordersync.cursor import later
from ordersync.errors import ApiError
from ordersync.paging import Answer, PageNumber, Request, RollingSweep, Stream, StreamStateWithRun
from ordersync.values import as_int, utc


class FirespringState(StreamStateWithRun):
    """``cursor``: the newest ``date_created`` stored; the look-back window of the next run hangs below it."""

    @classmethod
    def upgrade(cls, legacy: dict[str, Any]) -> dict[str, Any] | None:
        # 0.1 kept a signature of the filters; unknown here whether it matches: re-read once, as a filter change does
        return None


class FirespringClient(SourceClient):
    settings: FirespringSettings

    def http_options(self) -> HttpOptions:
        key = self.settings.api_key.get_secret_value()
        return HttpOptions(
            label=f"{self.source} (firespring)",
            headers={"Firespring-Api-Version": str(self.settings.api_version)},
            auth=httpx.BasicAuth(key, ""),
            secrets=[key, base64.b64encode(f"{key}:".encode()).decode()],
            auth_hint=f"check api_key in [sources.{self.source}] (Basic auth, the key as user name)",
        )

    @property
    def path(self) -> str:
        return f"websites/{self.settings.website_id}/orders"

    def streams(self) -> dict[str, Stream[Any]]:
        return {"orders": Stream(
            name="orders",
            state=FirespringState,
            filters=self.filter_settings(),
            passes=lambda state: ["all" if state.cursor is None else "lookback"],
            paginator=lambda kind, state: PageNumber(
                self.path, {**self.filters(), **self.days(kind, state)}, read_ahead=self.settings.concurrency,
                eager=kind == "all"),
            finish=lambda _kind, state: state.model_copy(
                update={"cursor": later(state.cursor, state.run.seen_max if state.run else None)}),
            normalize=normalize.order_rows,
            cursor=lambda record: utc(record.get("date_created")),
            created=lambda record: utc(record.get("date_created")),
            sweep=RollingSweep(
                period=timedelta(days=self.settings.sweep_days),
                horizon=lambda state, _now: date.fromisoformat(self.window_start(state.cursor) or "") if
                state.cursor else None,
                day=lambda moment: moment.astimezone(UTC).date() - timedelta(days=1))  # a day of margin, as above
            if self.settings.sweep_days else None,
        )}

    def days(self, kind: str, state: FirespringState) -> dict[str, str | None]:
        """The creation days of a pass: the look-back window, or (``sweep``) the run's slice of older history."""
        cut = state.run.sweep if state.run else None
        if kind != "sweep" or cut is None:
            return {"date_start": self.window_start(state.cursor)}
        s = self.settings
        start, end = cut.start.isoformat(), cut.end.isoformat()
        return {"date_start": max(start, s.date_start) if s.date_start else start,
                "date_end": min(end, s.date_end) if s.date_end else end}

    def filters(self) -> dict[str, Any]:
        """The request parameters every page of every pass shares (``date_start`` and ``page`` are added)."""
        s = self.settings
        return {"count": s.count, "sort": s.sort, "direction": s.direction, "status": s.status, "search": s.search,
                "date_end": s.date_end, "includes": s.all_includes()}

    def filter_settings(self) -> dict[str, Any]:
        """What the stored state is valid for: another website or other filters start over."""
        s = self.settings
        return {"website_id": s.website_id, "status": s.status, "search": s.search, "date_start": s.date_start,
                "date_end": s.date_end, "sort": s.sort, "direction": s.direction}

    def window_start(self, newest: datetime | None) -> str | None:
        """``date_start`` of an incremental pass: the look-back window below the newest order stored."""
        configured = self.settings.date_start
        if newest is None:
            return configured
        start = ((newest - timedelta(days=self.settings.lookback_days)).date() - timedelta(days=1)).isoformat()
        return max(start, configured) if configured else start

    async def fetch(self, request: Request) -> Answer:
        try:
            response = await self.http.request("GET", request.path, params=request.params)
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
        return Answer(response.records(data), total_pages=total_pages, sent=response.sent, size=len(response.content))
