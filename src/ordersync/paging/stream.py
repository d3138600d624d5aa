"""What an API declares for each stream: the :class:`Stream` base class (its passes, the slice plan of each pass,
its typed state, its cursor, its normalizer), and the terms a stream and the engine share (requests, answers,
chunks, the run in progress)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from ordersync.model import Record, Rows, StreamState
from ordersync.paging.guard import by_text
from ordersync.paging.slices import Carver, Span
from ordersync.paging.sweep import RollingSweep, Sweep, SweepSlice
from ordersync.stateview import Reach, StateView, Unfinished


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
    answered. ``place`` puts a record on the axis: most records of an answer outside the span its query covers
    mean the API ignores the filters, and the pass stops. ``covered(part)``: that span, where the API may read the
    bounds sent for ``part`` wider than ``part`` (Frontcore's local time in the autumn hour that occurs twice);
    None: the part itself."""

    span: Span
    read: Callable[[Span, Fetch], AsyncIterator[Chunk]]
    carver: Carver
    concurrency: int = 1
    place: Callable[[Record], int | None] | None = None
    path: str = ""
    open_below: bool = False  # the lowest slice asks no lower bound (records older than the span's start too)
    oldest_first: bool = False  # the API answers the oldest records first: slices are cut from the bottom
    covered: Callable[[Span], Span] | None = None

    def reach(self, part: Span) -> Span:
        """What a part's query may be answered: the span its bounds cover (records there are the API's right
        answer, stored like the part's own), open below for the lowest slice of a pass open below."""
        lo, hi = self.covered(part) if self.covered else part
        return (-(2**62) if self.open_below and part[0] == self.span[0] else lo), hi


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

    def describe(self, zone: ZoneInfo) -> StateView:
        """What ``ordersync status`` says of this state: how far the data reaches (:meth:`reach`), the creation day
        the rolling sweep re-reads next, and the run not finished, if any. ``zone``: the vendor's time zone."""
        run = self.run
        unfinished = None if run is None else Unfinished(
            started=run.planned or run.started, passes=tuple(run.passes), index=run.index, stretches=len(run.done))
        return StateView(reach=self.reach(zone), next_sweep_day=self.sweep.next if self.sweep else None,
                         unfinished=unfinished)

    def reach(self, zone: ZoneInfo) -> Reach | None:
        """How far the data reaches: here the cursor, an instant up to which every change is stored (an API whose
        cursor means something else says so in its own state class)."""
        if self.cursor is None:
            return None
        at = self.cursor if self.cursor.tzinfo else self.cursor.replace(tzinfo=UTC)
        return Reach(at, zone.key)


S = TypeVar("S", bound=StreamStateWithRun)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Stream(ABC, Generic[S]):
    """One stream of one source, declared by its API as a class with named methods (the Singer SDK's ``Stream``
    is the model); :func:`ordersync.paging.read_stream` reads it. Each API's client subclasses it once per stream
    (``class FrontcoreOrders(FrontcoreStream)``) and hands out instances from ``SourceClient.streams()``.

    A run of a stream, top to bottom: :meth:`passes` names the passes of a new run from the stored state (e.g.
    ``["all"]`` on the first run, ``["new", "updated"]`` later); :meth:`plan` gives each pass its slices (its span,
    how one slice is read, how slices are sized); each record read passes :meth:`cursor`, :meth:`record_id` and
    :meth:`created`, whose values the run keeps; :meth:`finish` folds a completed pass (``state.run`` holds what it
    saw) into the state; :meth:`normalize` turns each record into rows. The abstract methods are what every stream
    must say; the others default to what most streams need (no cursor field, no look-back, no sweep).
    """

    name: str  # the stream's name, as settings and the store know it
    state: type[S]  # its typed state (stored with every page)
    full_pass: str = "all"  # the pass that reads everything (a run with it needs no sweep)

    # --- what every stream must say ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def filters(self) -> dict[str, Any]:
        """The settings that decide what the stream covers: its state is valid for these values only."""

    @abstractmethod
    def passes(self, state: S) -> list[str]:
        """The passes of a new run, given the stored state."""

    @abstractmethod
    def plan(self, kind: str, state: S) -> SlicePlan:
        """Pass ``kind`` as slices; ``state.run`` is the run in progress (when it started, its sweep slice)."""

    @abstractmethod
    def finish(self, kind: str, state: S) -> S:
        """The state once pass ``kind`` is complete: ``state.run`` holds what the pass saw."""

    @abstractmethod
    def normalize(self, record: Record) -> Rows:
        """One record as the rows it is stored as."""

    # --- what most streams agree on ---------------------------------------------------------------------------
    @property
    def lookback(self) -> timedelta:
        """How far before its start a run's cursors stop (``run.started`` is the start less this), so that a change
        written late, or stamped by a clock a little behind ours, is read again by the next run."""
        return timedelta(0)

    @property
    def sweep(self) -> RollingSweep | None:
        """The rolling sweep, which adds a ``sweep`` pass to incremental runs (see :class:`RollingSweep`)."""
        return None

    def cursor(self, record: Record) -> datetime | None:
        """A record's cursor-field value (the run keeps the latest)."""
        return None

    def record_id(self, record: Record) -> int | None:
        """A record's numeric id (the run keeps the two highest)."""
        return None

    def created(self, record: Record) -> datetime | None:
        """A record's creation time (the run keeps the earliest: where the history begins)."""
        return None

    def identity(self, record: Record) -> object:
        """What makes two answers' records the same record, for the loop guard: its keys and its cursor value
        where the stream has them, never its text where a server could stamp each answer."""
        return by_text(record)

    def run_end(self) -> datetime | None:
        """Where a pass over the API's own time axis stops (None: the stream's passes need no end)."""
        return None

    def now(self) -> datetime:
        """The run's clock (read late: a test may set it)."""
        return utc_now()

    def rows(self, records: list[Record]) -> Rows:
        return Rows.latest(self.normalize(r) for r in records)
