"""e-guma v1 client: the key in the query string, and date windows instead of pages.

The API does not paginate: one answer holds every order matching the date filters. So every request is bounded
by a window ``[updated_at_after, updated_at_before)`` on ``updated_at`` (which equals ``created_at`` at creation,
so these windows also cover new orders). Windows are built on the API's own time axis, zone-less local
wall-clock time, contiguous and non-overlapping there, so the autumn hour that occurs twice is read once (as one
stretch of text) and the spring gap costs nothing. Every answer that arrives whole is kept: windows are sized to
hold about half of ``split_threshold`` orders at the density seen, and an answer with more is stored in parts.
Only a window that takes longer than ``timeout`` or answers more than ``max_body_mb`` is halved and asked again.
Windows are slices that fit in one answer, so they cannot shift, and ``concurrency`` of them are read at once. The
state keeps the windows complete, so a run killed half way reads the rest; once the last window is read the cursor
is its end, and the next run continues from it: an order cancelled since then comes back through its new
``updated_at``. The stream is a class, :class:`EgumaOrders` (an :class:`ordersync.paging.Stream`): its one pass,
its windows (a :class:`ordersync.paging.SlicePlan` of :class:`ordersync.paging.WholeAnswer`), how a pass is folded
into the state; the client answers its requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ordersync.apis.base import HttpOptions, SourceClient
from ordersync.apis.eguma import localtime, normalize
from ordersync.apis.eguma.localtime import FORMAT, parse_local, safe_end
from ordersync.apis.eguma.settings import EgumaSettings
from ordersync.errors import ApiError, TooLargeError, TooSlowError
from ordersync.model import Record, Rows
from ordersync.paging import Answer, Carver, Request, SlicePlan, Span, Stream, StreamStateWithRun, WholeAnswer
from ordersync.stateview import Reach

PATH = "vouchers/orders.json"
ROOMY_WINDOW_BYTES = 4 * 1024 * 1024
"""A window longer than a minute whose answer is larger than this is halved before it is parsed. Windows are sized
for about ``split_threshold / 2`` orders (well under a megabyte); only windows asked ahead across a quiet stretch
that ended come back this large, and parsing them whole would hold hundreds of megabytes."""


def local(moment: datetime) -> str:
    return moment.strftime(FORMAT)


def updated(record: Record) -> datetime | None:
    """An order's ``updated_at`` on the window axis (None unless it reads like ``2019-07-29T14:41:05``): read for
    every order of a large answer, so without a regular expression and ``strptime``."""
    value = record.get("updated_at")
    if not isinstance(value, str) or len(value) != 19 or value[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


EPOCH = datetime(1970, 1, 1)
"""The origin of the window axis: whole seconds of the API's zone-less local time."""


def seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def place(record: Record) -> int | None:
    """An order's place on the window axis: its ``updated_at``."""
    moment = updated(record)
    return seconds(moment) if moment is not None else None


class EgumaState(StreamStateWithRun):
    """``cursor``: the end of the last window read (local naive time); ``window_seconds``: the next window's size."""

    window_seconds: int | None = None

    @classmethod
    def upgrade(cls, legacy: dict[str, Any]) -> dict[str, Any] | None:
        cursor = parse_local(str(legacy.get("cursor") or ""))  # 0.1's cursor already had the look-back taken off
        if cursor is None:
            return None
        return {"cursor": cursor.isoformat(), "window_seconds": legacy.get("window_seconds")}

    def reach(self, zone: ZoneInfo) -> Reach | None:
        """The cursor is e-guma's zone-less local time: every change stamped before it is stored. In the autumn
        hour that occurs twice it is read as the earlier instant (the one that claims less)."""
        return Reach(self.cursor.replace(tzinfo=zone, fold=0), zone.key) if self.cursor else None


class EgumaClient(SourceClient):
    """e-guma's key in the query, its one stream, and one window answered whole (or refused as too slow or too
    large)."""

    settings: EgumaSettings

    def http_options(self) -> HttpOptions:
        key = self.settings.api_key.get_secret_value()
        return HttpOptions(label=f"{self.source} (eguma)", secrets=[key],
                           auth_hint=f"check api_key in [sources.{self.source}]")

    def streams(self) -> dict[str, Stream[Any]]:
        return {EgumaOrders.name: EgumaOrders(self)}

    async def fetch(self, request: Request) -> Answer:
        # A window too slow once will be too slow again: hear of it at once and split it (5xx are still retried).
        after = parse_local(str(request.params.get("updated_at_after") or ""))
        before = parse_local(str(request.params.get("updated_at_before") or ""))
        roomy = after is not None and before is not None and before - after > timedelta(minutes=1)
        try:
            response = await self.http.request("GET", request.path, params=request.params, retry_slow=False,
                                               max_bytes=ROOMY_WINDOW_BYTES if roomy else None)
        except TooSlowError:
            return Answer([], too_slow=self.http.describe("GET", request.path, request.params))
        except TooLargeError as exc:  # the API does not paginate: a smaller window is the way to a smaller answer
            oversize = exc.declared / exc.limit if exc.declared and exc.limit else None
            return Answer([], too_large=str(exc), oversize=oversize)
        body = response.json()
        if not isinstance(body, list):
            raise ApiError(f"{response.where} answered a JSON {type(body).__name__}, not the documented list of orders")
        # an element that is not an order (null, a number, one no parser keeps exactly) is rejected alone
        return Answer(response.records(body), size=len(response.content))


class EgumaOrders(Stream[EgumaState]):
    """The orders, read by windows on ``updated_at`` (the plan in the module's docstring)."""

    name = "orders"
    state = EgumaState

    def __init__(self, client: EgumaClient) -> None:
        self.client, self.settings = client, client.settings
        self.zone = ZoneInfo(self.settings.timezone)

    # --- what the state is valid for, and the passes of a run ---------------------------------------------
    @property
    def filters(self) -> dict[str, Any]:
        return {k: getattr(self.settings, k) for k in ("created_at_after", "created_at_before", "updated_at_after",
                                                       "updated_at_before", "start_date")}

    def passes(self, state: EgumaState) -> list[str]:
        return ["windows"]

    def run_end(self) -> datetime:
        """Now on the local axis (held at the start of a repeated autumn hour), or the configured
        ``updated_at_before`` if earlier: a run holds every change the API had when it started."""
        s = self.settings
        # e-guma stamps whole seconds and ``updated_at_before`` is strict: end one second after now, so that a
        # change stamped in the second the run starts is in this run (re-reading the rest of it is harmless)
        end = safe_end(localtime.utc_now() + timedelta(seconds=1), self.zone)
        if s.updated_at_before:
            end = min(end, parse_local(s.updated_at_before) or end)
        return end

    # --- the pass as windows, and the request of a window -------------------------------------------------
    def plan(self, kind: str, state: EgumaState) -> SlicePlan:
        """Windows on the API's local axis (whole seconds), from the cursor to the run's end."""
        s = self.settings
        assert state.run is not None and state.run.end is not None
        begin = max(state.cursor or s.lower_bound(), s.lower_bound())
        first = min(timedelta(seconds=state.window_seconds or s.window_days * 86400),
                    timedelta(days=s.max_window_days))
        target = max(1, s.split_threshold // 2)
        reader = WholeAnswer(PATH, self.query, target=target, part_size=target,
                             too_slow_hint=f"raise timeout (now {s.timeout:g}s) in [sources.{self.client.source}]")
        carver = Carver(target=target, first=max(1, int(first.total_seconds())),
                        largest=int(s.max_window_days * 86400))
        return SlicePlan((seconds(begin), max(seconds(begin), seconds(state.run.end))), reader, carver,
                         concurrency=s.concurrency, place=self.place, path=PATH)

    def query(self, part: Span) -> dict[str, Any]:
        """The query of one window: the key, the configured creation filters and the window on ``updated_at``."""
        s = self.settings
        return {
            "apikey": s.api_key.get_secret_value(),
            "created_at_after": s.created_at_after,
            "created_at_before": s.created_at_before,
            "updated_at_after": local(EPOCH + timedelta(seconds=part[0])),
            "updated_at_before": local(EPOCH + timedelta(seconds=part[1])),
        }

    # --- what a record says --------------------------------------------------------------------------------
    def place(self, record: Record) -> int | None:
        """An order's place on the window axis: its ``updated_at``."""
        return place(record)

    def normalize(self, record: Record) -> Rows:
        return normalize.order_rows(record, zone=self.zone)

    # --- a pass's end ----------------------------------------------------------------------------------------
    def finish(self, kind: str, state: EgumaState) -> EgumaState:
        """The next run starts ``lookback_seconds`` before this run's end (a late write, a clock a little behind
        ours), never before the cursor it had; its first window is sized by the density this run saw."""
        run = state.run
        assert run is not None and run.end is not None
        target = max(1, self.settings.split_threshold // 2)
        largest = self.settings.max_window_days * 86400
        window = max(1, int(min(target / run.rate, largest))) if run.rate else None
        cursor = run.end - timedelta(seconds=self.settings.lookback_seconds)
        cursor = max(state.cursor, cursor) if state.cursor else cursor
        return state.model_copy(update={"cursor": cursor, "window_seconds": window or state.window_seconds})
