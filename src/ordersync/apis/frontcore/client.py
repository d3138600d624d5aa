"""Frontcore v2 client: headers, filters, creation-time slices and the incremental plan.

Plan per stream (orders, customers):

* first run (or ``--full-refresh``): one pass over everything the filters allow;
* later runs: a ``new`` pass with ``since_id`` = the highest id stored of an order created before the last run's
  second (``max_id``, see :func:`ordersync.paging.engine._observe`; new orders can have
  ``updated_at: null``, which no ``updated_at_min`` filter returns), then an ``updated`` pass with
  ``updated_at_min`` = the time cursor (see :mod:`ordersync.cursor`);
* and a ``sweep`` pass over one slice of the creation days: the documentation does not say which changes move
  ``updated_at``, so every order is read again within ``sweep_days`` (see :class:`ordersync.paging.RollingSweep`).

Every pass is read in slices of creation time (``created_at_min``/``created_at_max``, whole seconds of Oslo
time) that end when the run started, so no new order enters a slice at the head; an order updated while its
slice is read stays in it (``updated_at_min`` is open above). Slices are sized to fit in one page; a slice of
one second that holds more is read page after page and confirmed by a second reading (Frontcore announces no
count, and a deletion shifts pages). Each stream is a class (:class:`FrontcoreOrders`, :class:`FrontcoreCustomers`,
both a :class:`FrontcoreStream`, an :class:`ordersync.paging.Stream`): its passes, the slices of a pass, how a pass
is folded into the state; :func:`ordersync.paging.read_stream` reads it, and the client answers its requests.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ordersync.apis.base import HttpOptions, SourceClient
from ordersync.apis.frontcore import normalize
from ordersync.apis.frontcore.settings import FrontcoreSettings
from ordersync.cursor import next_cursor
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
from ordersync.values import as_int, utc


class FrontcoreState(StreamStateWithRun):
    """``cursor``: the time cursor of the ``updated`` pass; ``max_id``: the highest id stored (``new`` pass)."""

    max_id: int | None = None

    @classmethod
    def upgrade(cls, legacy: dict[str, Any]) -> dict[str, Any] | None:
        if legacy.get("pending") or legacy.get("max_id") is None:
            return None  # a run stopped half way: its page positions meant something else
        return {"max_id": legacy["max_id"], "cursor": legacy.get("time_cursor")}


def local_param(moment: datetime, zone: ZoneInfo, at_least: bool = False) -> str:
    """``moment`` as the zone-less local time Frontcore expects, never later than ``moment`` however it is read
    (in the autumn hour that occurs twice, the earlier reading is sent), or never earlier (``at_least``: an upper
    bound), so that a slice's bounds hold all of it whichever reading the API makes."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    readings = (local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1))
    if not at_least and any(r.astimezone(UTC) > moment for r in readings):
        local -= timedelta(hours=1)
    if at_least and any(r.astimezone(UTC) < moment for r in readings):
        local += timedelta(hours=1)
    return local.strftime("%Y-%m-%d %H:%M:%S")


def covered_by(bounds: dict[str, str], part: Span, zone: ZoneInfo) -> Span:
    """The creation seconds the ``created_at_min``/``created_at_max`` sent for ``part`` may be answered from: from
    the earliest reading of the one to the latest of the other (and its second: the documentation does not say
    whether ``_max`` holds it). Wider than ``part`` only where :func:`local_param` widened a bound."""
    def readings(text: str) -> list[int]:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        return [int(local.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1)]

    lo = min(readings(bounds["created_at_min"])) if "created_at_min" in bounds else part[0]
    return min(lo, part[0]), max(max(readings(bounds["created_at_max"])) + 1, part[1])


FLOOR = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
"""Where a pass over all history starts on the creation axis; its lowest slice asks no lower bound at all."""
def epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def moment_of(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class FrontcoreClient(SourceClient):
    """Frontcore's key header, its streams, and one request answered as a list of records."""

    settings: FrontcoreSettings

    def http_options(self) -> HttpOptions:
        key = self.settings.api_key.get_secret_value()
        return HttpOptions(label=f"{self.source} (frontcore)", headers={"X-API-Key": key}, secrets=[key],
                           auth_hint=f"check api_key in [sources.{self.source}]")

    def streams(self) -> dict[str, Stream[Any]]:
        return {stream.name: stream for stream in (FrontcoreOrders(self), FrontcoreCustomers(self))}

    async def fetch(self, request: Request) -> Answer:
        response = await self.http.request("GET", request.path, params=request.params)
        body = response.json()
        if not isinstance(body, list):
            kind = type(body).__name__
            raise ApiError(f"{response.where} answered a JSON {kind}, not the documented list of records")
        return Answer(response.records(body), size=len(response.content))


class FrontcoreStream(Stream[FrontcoreState]):
    """A Frontcore list read by creation-time slices (the plan in the module's docstring); a subclass names its
    path, its date filters, its own query and its normalizer."""

    state = FrontcoreState
    path: str
    date_filters: tuple[str, ...]  # the ``<field>_min``/``<field>_max`` filters the list documents
    newest_first = False  # the order the list answers in

    def __init__(self, client: FrontcoreClient) -> None:
        self.client, self.settings = client, client.settings
        self.zone = ZoneInfo(self.settings.timezone)

    @abstractmethod
    def own_params(self) -> dict[str, Any]:
        """The filters and options only this list has."""

    # --- what the state is valid for, and the passes of a run ---------------------------------------------
    @property
    def filters(self) -> dict[str, Any]:
        return {k: v for k, v in self.filter_params().items() if k not in ("limit", "user_data", "include[]")}

    @property
    def lookback(self) -> timedelta:
        return timedelta(seconds=self.settings.lookback_seconds)

    def passes(self, state: FrontcoreState) -> list[str]:
        return ["all"] if state.max_id is None else ["new", "updated"]

    # --- one pass as slices, and the requests of a slice --------------------------------------------------
    def plan(self, kind: str, state: FrontcoreState) -> SlicePlan:
        """The pass as slices of creation time, from the configured (or the history's) start to the run's start,
        or over the run's sweep days."""
        s, zone = self.settings, self.zone
        run = state.run
        assert run is not None
        lo = epoch(utc(s.created_at_min, zone)) if s.created_at_min else None
        # no slice reaches past the second the run started in, so only the newest slice can gain an order while it
        # is read; max_id counts only orders created before that second (paging.engine._observe), so the next
        # run's since_id asks for every order created since. (A slice open to later seconds would hold orders
        # created after the run started in slices read before them.)
        hi = (epoch(run.planned or run.started) or 0) + 1
        if s.created_at_max:
            hi = min(hi, epoch(utc(s.created_at_max, zone)) or hi)
        if kind == "sweep" and run.sweep is not None:
            days = (datetime.combine(run.sweep.start, time(), zone), datetime.combine(run.sweep.end, time(), zone))
            lo, hi = max(lo or 0, epoch(days[0]) or 0), min(hi, epoch(days[1]) or hi)
        span = (lo if lo is not None else FLOOR, hi)
        params = self.pass_params(kind, state)

        def bounds(part: Span) -> dict[str, str]:
            sent = {"created_at_max": local_param(moment_of(part[1]), zone, at_least=True)}
            if part[0] > span[0] or lo is not None:
                sent["created_at_min"] = local_param(moment_of(part[0]), zone)
            return sent

        def query(part: Span) -> dict[str, Any]:
            return {**params, "created_at_min": None, **bounds(part)}

        def covered(part: Span) -> Span:
            return covered_by(bounds(part), part, zone)

        reader = NumberedPages(self.path, query, s.limit, self.place, identity=self.identity,
                               newest_first=self.newest_first, rank=self.record_id, covered=covered)
        return SlicePlan((span[0], max(span)), reader, Carver.for_pages(s.limit), concurrency=s.concurrency,
                         place=self.place, path=self.path, open_below=lo is None, covered=covered)

    def pass_params(self, kind: str, state: FrontcoreState) -> dict[str, Any]:
        """The query every slice of a pass shares: the filters, and the pass's own (``since_id``, the cursor)."""
        params = self.filter_params()
        if kind == "new":
            params["since_id"] = max(state.max_id or 0, self.settings.since_id or 0)
        elif kind == "updated":
            configured = utc(params.get("updated_at_min"), self.zone)
            if state.cursor and (configured is None or state.cursor > configured):
                params["updated_at_min"] = local_param(state.cursor, self.zone)
        return params

    def filter_params(self) -> dict[str, Any]:
        """The configured filters as query parameters, with the page size."""
        s = self.settings
        params: dict[str, Any] = {"limit": s.limit}
        for field in self.date_filters:
            for suffix in ("min", "max"):
                params[f"{field}_{suffix}"] = getattr(s, f"{field}_{suffix}")
        if s.since_id is not None:
            params["since_id"] = s.since_id
        return {**params, **self.own_params()}

    # --- what a record says --------------------------------------------------------------------------------
    def place(self, record: Record) -> int | None:
        """A record's place on the slice axis: its creation second."""
        return epoch(utc(record.get("created_at")))

    def identity(self, record: Record) -> object:
        return record.get("id"), record.get("updated_at")

    def cursor(self, record: Record) -> datetime | None:
        return utc(record.get("updated_at")) or utc(record.get("created_at"))

    def record_id(self, record: Record) -> int | None:
        """A record's id: the ``new`` pass asks above the highest; new records rank above every older one."""
        return as_int(record.get("id"))

    def created(self, record: Record) -> datetime | None:
        return utc(record.get("created_at"))

    # --- a pass's end, and the sweep -----------------------------------------------------------------------
    def finish(self, kind: str, state: FrontcoreState) -> FrontcoreState:
        """``max_id`` after an ``all`` or ``new`` pass (unless its highest id is implausible, see
        :func:`plausible_max_id`), the cursor after an ``all`` or ``updated`` pass."""
        run = state.run
        assert run is not None
        update: dict[str, Any] = {}
        if kind in ("all", "new"):
            top = plausible_max_id(state.max_id, run.seen_max_id, run.seen_next_id)
            if top != run.seen_max_id:
                self.client.notes.append(
                    f"id {run.seen_max_id} is far beyond the other ids (the highest of them is {top}): its record "
                    f"is stored, but new records are still asked for above id {top}")
            ids = [i for i in (state.max_id, top) if i is not None]
            update["max_id"] = max(ids) if ids else 0
        if kind in ("all", "updated"):
            cursor = next_cursor(state.cursor, run.seen_max, run.started)
            update["cursor"] = cursor or (run.started if kind == "all" else None)
        return state.model_copy(update=update)

    @property
    def sweep(self) -> RollingSweep | None:
        days = self.settings.sweep_days
        return RollingSweep(period=timedelta(days=days), horizon=self.sweep_horizon, day=self.local_day) \
            if days else None

    def sweep_horizon(self, state: FrontcoreState, now: datetime) -> date | None:
        """The sweep covers every creation day up to today (local): no pass re-reads a creation window."""
        return (now.astimezone(self.zone).date() + timedelta(days=1)) if state.max_id is not None else None

    def local_day(self, moment: datetime) -> date:
        """The creation day (Frontcore's local time) of a moment: the sweep's axis."""
        return moment.astimezone(self.zone).date()


class FrontcoreOrders(FrontcoreStream):
    """``/orders``: answered newest first; filtered by course, export state and the orders' own date fields."""

    name = path = "orders"
    date_filters = ("created_at", "updated_at", "exported_at")
    newest_first = True

    def own_params(self) -> dict[str, Any]:
        s = self.settings
        return {"course_id": s.course_id, "user_data": s.user_data, "exported": s.exported,
                "include[]": list(s.include) or None}

    def normalize(self, record: Record) -> Rows:
        return normalize.order_rows(record)


class FrontcoreCustomers(FrontcoreStream):
    """``/customers``: the customers' own date filters and includes."""

    name = path = "customers"
    date_filters = ("created_at", "updated_at")

    def own_params(self) -> dict[str, Any]:
        return {"include[]": list(self.settings.customer_include) or None}

    def normalize(self, record: Record) -> Rows:
        return normalize.customer_rows(record)


ID_LEAP, ID_SLACK = 2, 100_000
"""An id above ``ID_LEAP`` times the next-highest one plus ``ID_SLACK`` is not believed as ``max_id``."""


def plausible_max_id(stored: int | None, highest: int | None, next_highest: int | None) -> int | None:
    """The highest id a pass saw, unless it is far beyond every other id known (the next-highest the pass saw,
    or the stored ``max_id``): then that other id. A typo'd or test id (``10**15``) would otherwise make every
    later ``new`` pass ask ``since_id`` beyond all real orders. A wrong judgement costs a re-read only: the next
    run asks from the lower id again, and once a second id comes near the high one, it is believed."""
    known = [i for i in (stored, next_highest) if i]  # a stored 0: no record seen yet
    if highest is None or not known:
        return highest
    reference = max(known)
    return reference if highest > ID_LEAP * reference + ID_SLACK else highest
