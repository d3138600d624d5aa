"""What an API declares for each stream: its passes, the slice plan of each pass, its typed state, its cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ordersync.model import Record, Rows, StreamState
from ordersync.paging.slices import Carver, Span
from ordersync.paging.sweep import RollingSweep, Sweep, SweepSlice


@dataclass
class Request:
    """One request a slice reader wants sent: path, query and extra headers."""

    path: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """What a client read from one answer, in the terms every slice reader understands."""

    records: list[Record]
    total_pages: int | None = None  # announced by the API, if it does
    page_size: int | None = None  # the page size the server used (may differ from the one asked)
    page_index: int | None = None
    total_items: int | None = None  # announced by the API, if it does (records in the whole query)
    not_modified: bool = False  # 304 to a conditional request
    last_modified: str | None = None
    too_slow: str | None = None  # the request (described) did not answer within the timeout
    too_large: str | None = None  # the answer was refused for its size (the error's line)
    oversize: float | None = None  # how many times too large it said it was (its Content-Length over the limit)
    size: int | None = None  # the body's length in bytes, if known (no record can be larger)


Fetch = Callable[[Request], Awaitable[Answer]]


@dataclass
class Chunk:
    """Records a slice reader hands over, and what storing them means for the slice.

    ``last``: the slice is complete once these are stored. ``denser``: the slice holds more than one answer
    should; it is read again as smaller slices, at least this many records per unit of the axis (its records
    are left: the smaller slices read them again). ``split``: the stretches such a slice is read again as, each
    ``(lo, hi, whole)``: whole, as one slice (a stretch the answer showed to be empty), or cut at the density."""

    records: list[Record]
    last: bool = False
    denser: float | None = None
    read: list[Record] | None = None  # the records of a slice's answer that are not handed over (``denser``)
    finished: tuple[int, int] | None = None  # with ``denser``: the stretch of the slice these records complete
    split: list[tuple[int, int, bool]] | None = None
    memo: dict[str, Any] = field(default_factory=dict)  # facts for the pass's end (e.g. a range's Last-Modified)
    rendered: list[bytes] | None = None  # each record as JSON text (set by the engine)


@dataclass
class SlicePlan:
    """One pass as slices: the span it covers, how a slice is read, how slices are sized.

    ``read(part, fetch)`` yields the chunks of one slice, asking each page only after the one before it was
    answered. ``place`` puts a record on the axis: most records of an answer outside their slice mean the API
    ignores the filters, and the pass stops."""

    span: Span
    read: Callable[[Span, Fetch], AsyncIterator[Chunk]]
    carver: Carver
    concurrency: int = 1
    place: Callable[[Record], int | None] | None = None
    path: str = ""
    open_below: bool = False  # the lowest slice asks no lower bound (records older than the span's start too)
    oldest_first: bool = False  # the API answers the oldest records first: slices are cut from the bottom


class RunProgress(BaseModel):
    """A run in progress, stored with every page: which pass, which of its slices are complete, what it has seen."""

    model_config = ConfigDict(extra="forbid")

    passes: list[str]
    index: int = 0
    started: datetime  # when the run started, minus the look-back: no cursor moves past it
    end: datetime | None = None  # where a pass over the API's own time axis stops
    done: list[tuple[int, int]] = []  # the complete slices of the current pass, merged
    rate: float | None = None  # records per unit of the axis, as the slices so far showed (sizes the next ones)
    position: dict[str, Any] | None = None  # written by ordersync before slices; read as "nothing done"
    seen_max: datetime | None = None  # the latest cursor-field value seen in this pass
    seen_max_id: int | None = None  # the highest numeric id seen in this pass
    seen_next_id: int | None = None  # the second-highest numeric id seen in this pass (judges the highest)
    memo: dict[str, Any] = {}
    planned: datetime | None = None  # when the run was planned (no look-back subtracted)
    oldest: datetime | None = None  # the earliest creation time seen in this pass (where the history begins)
    sweep: SweepSlice | None = None  # the slice of older history this run's ``sweep`` pass re-reads

    @property
    def current(self) -> str:
        return self.passes[self.index]


class StreamStateWithRun(StreamState):
    """The state every declared stream has: a time cursor, and the run in progress (None between runs)."""

    cursor: datetime | None = None
    run: RunProgress | None = None
    sweep: Sweep | None = None  # the rolling sweep's place (streams that declare one)

    def describe(self) -> dict[str, str]:
        shown = {k: str(v) for k, v in self.model_dump(exclude={"version", "filters", "run", "sweep"}).items()
                 if v is not None and v != {}}
        if self.sweep is not None:
            shown["oldest unswept day"] = self.sweep.next.isoformat()
            shown["sweep"] = f"days {self.sweep.origin}..{self.sweep.next} re-read since " \
                             f"{self.sweep.lap_started:%Y-%m-%d %H:%M}Z"
        if self.run is not None:
            parts = len(self.run.done)
            shown["resumes"] = f"pass {self.run.current}" + (f", {parts} stretch(es) of it complete" if parts else "")
        return shown


S = TypeVar("S", bound=StreamStateWithRun)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Stream(Generic[S]):
    """One stream, declared by its API; :func:`ordersync.paging.read_stream` does the rest.

    ``passes`` names the passes of a new run given the stored state (e.g. ``["all"]`` on the first run,
    ``["new", "updated"]`` later); ``plan`` builds the slice plan of one pass from the state (whose ``run`` is
    the run in progress); ``finish`` folds a completed pass (``state.run`` holds what it saw) into the state;
    ``cursor`` reads a record's cursor-field value, ``record_id`` its numeric id and ``key`` its identity (what the
    loop guard compares).
    """

    name: str
    state: type[S]
    filters: dict[str, Any]
    passes: Callable[[S], list[str]]
    plan: Callable[[str, S], SlicePlan]
    finish: Callable[[str, S], S]
    normalize: Callable[[Record], Rows]
    lookback: timedelta = timedelta(0)
    cursor: Callable[[Record], datetime | None] | None = None
    record_id: Callable[[Record], int | None] | None = None
    created: Callable[[Record], datetime | None] | None = None  # a record's creation time (where history begins)
    sweep: RollingSweep | None = None  # adds a ``sweep`` pass to incremental runs (see :class:`RollingSweep`)
    full_pass: str = "all"  # the pass that reads everything (a run with it needs no sweep)
    run_end: Callable[[], datetime | None] = lambda: None
    now: Callable[[], datetime] = field(default=lambda: utc_now())  # late: a test may set the clock

    def rows(self, records: list[Record]) -> Rows:
        return Rows.latest(self.normalize(r) for r in records)
