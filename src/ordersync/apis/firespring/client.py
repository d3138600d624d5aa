"""Firespring client: Basic auth, the version header, filters, paging by ``meta.pagination`` and the look-back plan.

Firespring has no "updated since" filter, so the plan is one pass per run over a range of creation dates:

* first run (or ``--full-refresh``, or after a change of the filters): every order the filters allow;
* later runs: ``date_start`` = the newest ``date_created`` stored minus ``lookback_days`` (and one more day of
  margin for the API's reading of a date), so new orders and status changes of recent orders are seen;
* and a ``sweep`` pass over one slice of the older creation days (``date_start``/``date_end``), so that a change to
  an old order is seen within ``sweep_days`` (see :class:`ordersync.paging.RollingSweep`).

Every pass is read in slices of creation days (``date_start``/``date_end``), sized to fit in one page; a day that
holds more is read page after page in ``date_created`` ascending order (our default), so orders created while it
is read land at the end and shift nothing already read. ``meta.pagination.total`` checks such a reading: a total
that changed from the first page to the last, a page shorter than it implies, or fewer orders than announced (a
deletion shifted the pages) read the day again. The state keeps the days complete, so a killed run reads the rest.

The stream is a class, :class:`FirespringOrders` (an :class:`ordersync.paging.Stream`): its passes, the slices of a
pass, how a pass is folded into the state; the client answers its requests.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ordersync.apis.base import HttpOptions, SourceClient
from ordersync.apis.firespring import normalize
from ordersync.apis.firespring.settings import FirespringSettings
from ordersync.cursor import later
from ordersync.errors import ApiError
from ordersync.model import Record, Rows
from ordersync.paging import (
    Answer,
    Carver,
    NumberedPages,
    Request,
    RollingSweep,
    SlicePlan,
    Span,
    Stream,
    StreamStateWithRun,
)
from ordersync.stateview import Reach
from ordersync.values import as_int, utc

FLOOR_DAY = date(2000, 1, 1).toordinal()
"""Where a pass over all history starts on the creation axis; its lowest slice asks no lower bound at all."""
class FirespringState(StreamStateWithRun):
    """``cursor``: the newest ``date_created`` stored; the look-back window of the next run hangs below it."""

    @classmethod
    def upgrade(cls, legacy: dict[str, Any]) -> dict[str, Any] | None:
        # 0.1 kept a signature of the filters; unknown here whether it matches: re-read once, as a filter change does
        return None

    def reach(self, zone: ZoneInfo) -> Reach | None:
        """Firespring has no cursor of changes: the cursor is the newest creation time stored (changes to older
        orders arrive through the look-back window and the sweep)."""
        reach = super().reach(zone)
        return dataclasses.replace(reach, what="orders created") if reach else None


class FirespringClient(SourceClient):
    """Firespring's Basic auth and version header, its one stream, and one request answered as a page."""

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

    def streams(self) -> dict[str, Stream[Any]]:
        return {FirespringOrders.name: FirespringOrders(self)}

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
        return Answer(response.records(data), total_pages=total_pages, total_items=as_int(pagination.get("total")),
                      size=len(response.content))


class FirespringOrders(Stream[FirespringState]):
    """A website's orders, read by slices of creation days (the plan in the module's docstring)."""

    name = "orders"
    state = FirespringState

    def __init__(self, client: FirespringClient) -> None:
        self.client, self.settings = client, client.settings

    @property
    def path(self) -> str:
        return f"websites/{self.settings.website_id}/orders"

    # --- what the state is valid for, and the passes of a run ---------------------------------------------
    @property
    def filters(self) -> dict[str, Any]:
        """Another website or other filters start over."""
        s = self.settings
        return {"website_id": s.website_id, "status": s.status, "search": s.search, "date_start": s.date_start,
                "date_end": s.date_end, "sort": s.sort, "direction": s.direction}

    def passes(self, state: FirespringState) -> list[str]:
        return ["all" if state.cursor is None else "lookback"]

    # --- one pass as slices, and the requests of a slice --------------------------------------------------
    def plan(self, kind: str, state: FirespringState) -> SlicePlan:
        """The pass as slices of creation days (UTC, as the API filters them), up to the day the run started."""
        s, run = self.settings, state.run
        assert run is not None
        first, last = self.days(kind, state)
        today = (run.planned or run.started).astimezone(UTC).date() + timedelta(days=1)
        lo = first.toordinal() if first else None
        hi = min(today, last).toordinal() if last else today.toordinal()
        span = (lo if lo is not None else FLOOR_DAY, hi)

        def query(part: Span) -> dict[str, Any]:
            bounds = {"date_end": date.fromordinal(part[1]).isoformat()}
            if part[0] > span[0] or lo is not None:
                bounds["date_start"] = date.fromordinal(part[0]).isoformat()
            return {**self.shared_params(), **bounds}

        by_creation = s.sort == "date_created"
        reader = NumberedPages(self.path, query, s.count, self.place, identity=self.identity,
                               newest_first=by_creation and s.direction == "desc",
                               appends_only=by_creation and s.direction == "asc")
        return SlicePlan((span[0], max(span)), reader, Carver.for_pages(s.count),
                         concurrency=s.concurrency, place=self.place, path=self.path, open_below=lo is None,
                         oldest_first=by_creation and s.direction == "asc")

    def days(self, kind: str, state: FirespringState) -> tuple[date | None, date | None]:
        """The first and the end (exclusive) creation day of a pass: the look-back window, or (``sweep``) the
        run's slice of older history; None: unbounded."""
        s = self.settings
        cut = state.run.sweep if state.run else None
        newest = state.cursor
        if newest is not None and state.run is not None:  # a cursor stored past a run's start heals
            newest = min(newest, state.run.planned or state.run.started)
        start = self.window_start(newest) if kind != "sweep" or cut is None else cut.start.isoformat()
        end = cut.end.isoformat() if kind == "sweep" and cut is not None else None
        if kind == "sweep" and s.date_start and start:
            start = max(start, s.date_start)
        if s.date_end:
            end = min(end, s.date_end) if end else s.date_end
        return (date.fromisoformat(start) if start else None), (date.fromisoformat(end) if end else None)

    def window_start(self, newest: datetime | None) -> str | None:
        """``date_start`` of an incremental pass: the look-back window below the newest order stored."""
        configured = self.settings.date_start
        if newest is None:
            return configured
        start = ((newest - timedelta(days=self.settings.lookback_days)).date() - timedelta(days=1)).isoformat()
        return max(start, configured) if configured else start

    def shared_params(self) -> dict[str, Any]:
        """The request parameters every page of every pass shares (``date_start``, ``date_end`` and ``page`` are
        added)."""
        s = self.settings
        return {"count": s.count, "sort": s.sort, "direction": s.direction, "status": s.status, "search": s.search,
                "includes": s.all_includes()}

    # --- what a record says --------------------------------------------------------------------------------
    def place(self, record: Record) -> int | None:
        """An order's place on the slice axis: its creation day (UTC)."""
        created = utc(record.get("date_created"))
        return created.date().toordinal() if created else None

    def identity(self, record: Record) -> object:
        return record.get("id")

    def cursor(self, record: Record) -> datetime | None:
        return utc(record.get("date_created"))

    def created(self, record: Record) -> datetime | None:
        return utc(record.get("date_created"))

    def normalize(self, record: Record) -> Rows:
        return normalize.order_rows(record)

    # --- a pass's end, and the sweep -----------------------------------------------------------------------
    def finish(self, kind: str, state: FirespringState) -> FirespringState:
        """The newest ``date_created`` seen becomes the cursor, but never past the run's start: an order dated in
        the future (``9999-01-01``) is stored, and said, and the look-back window stays where new orders are."""
        run = state.run
        assert run is not None
        start = run.planned or run.started
        cursor = later(state.cursor, run.seen_max)
        if cursor is not None and cursor > start:
            if run.seen_max is not None and run.seen_max > start:
                self.client.notes.append(f"an order is dated {run.seen_max.isoformat()}, after this run started "
                                         f"({start.isoformat()}): it is stored, but the cursor stops at the run's "
                                         "start")
            cursor = start
        return state.model_copy(update={"cursor": cursor})

    @property
    def sweep(self) -> RollingSweep | None:
        days = self.settings.sweep_days
        return RollingSweep(period=timedelta(days=days), horizon=self.sweep_horizon, day=self.sweep_day) \
            if days else None

    def sweep_horizon(self, state: FirespringState, now: datetime) -> date | None:
        """The sweep covers the creation days below the next run's look-back window."""
        return date.fromisoformat(self.window_start(min(state.cursor, now)) or "") if state.cursor else None

    @staticmethod
    def sweep_day(moment: datetime) -> date:
        """A creation time's day on the sweep's axis: its UTC day, less the day of margin the look-back keeps."""
        return moment.astimezone(UTC).date() - timedelta(days=1)
