"""Paginators, declared streams and the one loop that owns paging (in the spirit of dlt's ``rest_client``).

A **paginator** is a small object over a *position* (a pydantic model, stored in the state so that a killed run
resumes there): it builds the request for a position, may guess the next position before the answer is known
(that is what read-ahead reads), and reads an answer into a :class:`Step`: the records to store and the next
position (None: the pass is complete), or no records and another position to ask instead (a window split).

* :class:`PageNumber`: ``page=1, 2, ...``; ends at a short page or at the announced last page; reads ahead.
* :class:`DateWindow`: no pages at all, contiguous date windows sized by the density seen, halved when an answer
  is too large or too slow; a large complete answer is stored in parts (with read-ahead: the windows planned next
  asked before the answer).
* :class:`Keyset`: creation ranges read in ascending creation order (Prio), with ``If-Modified-Since`` per range;
  pages by keyset (from the last creation time read), or by index once the total is known, each index page
  checked by the keyset anchor it must begin with; with read-ahead, several index pages and ranges at once.

A stream whose API does not promise that every change moves its cursor field declares a :class:`RollingSweep`:
each incremental run then adds a ``sweep`` pass over one slice of the older creation days, sized so that the whole
history is read again within a period.

A **stream** is declared by its API (:class:`Stream`): its passes, a paginator per pass, its cursor field, its
typed state, how a completed pass folds into that state, and its normalizer. :func:`read_stream` is the only
loop: it walks the passes and the pages and yields each page with the state that is true once it is stored.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
from array import array
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict

from ordersync.cursor import later
from ordersync.errors import ApiError
from ordersync.model import Page, Record, Rows, StreamState
from ordersync.tasks import cancel_all

P = TypeVar("P", bound=BaseModel)
S = TypeVar("S", bound="StreamStateWithRun")


@dataclass
class Request:
    """One request a paginator wants sent: path, query and extra headers."""

    path: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """What a client read from one answer, in the terms every paginator understands."""

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
    sent: int = 0  # the order in which the request that got this answer was sent (a retry is sent late)
    arrived: int = 0  # the order in which the answers of a pass arrived (:func:`paginate` stamps it)
    asked_after: int = 0  # how many answers of the pass had arrived when this one's request was made
    moved: bool = False  # a page used before this one in its pass began with a record already read: the list moved
    size: int | None = None  # the body's length in bytes, if known (no record can be larger)


@dataclass
class Step(Generic[P]):
    records: list[Record] | None  # None: nothing to store from this answer, ask ``next`` instead
    next: P | None  # None: the pass is complete
    memo: dict[str, Any] = field(default_factory=dict)  # facts for the pass's end (e.g. a range's Last-Modified)
    rendered: list[bytes] | None = None  # each record as JSON text (by the loop guard), reused as its ``raw``


class Paginator(Protocol[P]):
    read_ahead: int  # requests in flight at once; above 1 only if ``guess`` can predict positions
    # optional ``eager: bool``: read ahead from the first request on, not only once an answer said there is more
    # optional ``spare: int`` (> 0): requests sent ahead of the caller's use of the answers (see paginate)
    # optional ``revise(before, at, answer) -> P | None``: a position guessed after ``before`` whose answer is in
    # before the steps reach it, replaced at once (a refused date window cut into parts); see paginate

    def start(self, saved: dict[str, Any] | None) -> P | None: ...
    def request(self, at: P) -> Request: ...
    def guess(self, at: P) -> P | None: ...
    def step(self, at: P, answer: Answer) -> Step[P]: ...


class Position(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- the paginators ---------------------------------------------------------------------------------------------
class PageAt(Position):
    page: int
    last: int | None = None  # the last page announced so far, if the API announces one


@dataclass
class PageNumber:
    """Numbered pages: ``page`` = 1, 2, ...; the last is the first short page (no total) or the announced one.

    Up to ``read_ahead`` pages are in flight once a full page shows there is more, or from the first request on
    when the pass is ``eager`` (a first run's whole history: it is rarely one page, and waiting for page 1 before
    asking pages 2, 3, ... costs a whole round trip; a history of fewer pages asks up to ``read_ahead - 1`` pages
    too many, once). Answers are used strictly in page order. A page whose request was sent before the request
    that got its predecessor's answer (the predecessor was retried meanwhile) is read again: a record created in
    between moves the predecessor's last record onto it, after it was read, and would be lost. So is a page whose
    answer arrived before its predecessor's, when the list has moved in this pass (a page began with a record
    already read: records were created while it was read, and the server may have read this page before them) or
    when it was asked before the pass's first page was answered (then every page before it may have been read after
    the move, and none would show it). Answered in the order sent, a shift only repeats rows.
    """

    path: str
    params: dict[str, Any]
    size: int | None = None  # a page with fewer records is the last (APIs without a total)
    read_ahead: int = 1
    eager: bool = False  # read ahead from the first request on (see above)
    used: dict[int, tuple[int, int]] = field(default_factory=dict)  # page -> (sent, arrived) of the answer used

    def start(self, saved: dict[str, Any] | None) -> PageAt:
        return PageAt.model_validate(saved) if saved else PageAt(page=1)

    def request(self, at: PageAt) -> Request:
        return Request(self.path, {**self.params, "page": at.page})

    def guess(self, at: PageAt) -> PageAt | None:
        if at.last is not None and at.page >= at.last:
            return None
        return PageAt(page=at.page + 1, last=at.last)

    def step(self, at: PageAt, answer: Answer) -> Step[PageAt]:
        before = self.used.get(at.page - 1)
        if before is not None:
            _sent, first_arrived = next(iter(self.used.values()))  # the pass's first page used
            unconfirmed = answer.asked_after < first_arrived  # asked before the first page was answered
            if (answer.sent and answer.sent < before[0]) or \
                    ((answer.moved or unconfirmed) and answer.arrived and answer.arrived < before[1]):
                return Step(None, at)  # maybe read before its predecessor: ask again
        self.used[at.page] = (answer.sent, answer.arrived)
        records = answer.records
        last = max(at.last or 0, answer.total_pages) if answer.total_pages is not None else at.last
        done = not records or (self.size is not None and len(records) < self.size) or \
            (answer.total_pages is not None and at.page >= answer.total_pages)
        return Step(records, None if done else PageAt(page=at.page + 1, last=last))


class WindowAt(Position):
    after: datetime  # on the API's own time axis (e-guma: naive local time)
    seconds: int  # the window's length


ONE_SECOND = timedelta(seconds=1)


@dataclass
class DateWindow:
    """Contiguous windows ``[after, after + seconds)`` up to ``end``, for an API that answers every record of a
    window at once (no pages).

    An answer that arrived whole holds every record of its window, so it is kept whatever its count; one with more
    than ``split_threshold`` records is stored in parts of about ``target`` (half the threshold) records, each
    part's state naming the rest of the window (a killed run asks for that rest). Windows are sized by the density
    seen: the next one holds about ``target`` records at the rate of the last answer (at most 8 times as long as
    the one before, and so 8 times after an empty answer), between one second and ``largest``. Only an answer
    too slow or too large in bytes is dropped: its window is halved and the other half asked next.

    With read-ahead, ``guess`` plans the next windows before the answers are known and ``step`` follows that plan,
    so every window asked ahead is used: only a split wastes a request. A window asked ahead and refused is cut
    (``revise``) as soon as the chain of guesses meets its answer, not a round trip later when the steps reach it.
    """

    path: str
    params: Callable[[datetime, datetime], dict[str, Any]]  # the query of one window
    begin: datetime
    end: datetime
    first_seconds: int
    largest: timedelta
    split_threshold: int
    too_slow_hint: str  # what to do when even one second is too slow
    moment: Callable[[Record], datetime | None] | None = None  # a record's place on the window axis
    read_ahead: int = 1
    eager: ClassVar[bool] = True  # every window up to ``end`` is needed: read ahead from the first request on
    plan: dict[WindowAt, WindowAt] = field(default_factory=dict)  # the window planned after a window
    parts: dict[WindowAt, tuple[list[Record], float, int | None]] = field(default_factory=dict)  # a large answer's
    rate: float | None = None  # records per second in the last answer (None: no answer yet)

    def start(self, saved: dict[str, Any] | None) -> WindowAt | None:
        at = WindowAt.model_validate(saved) if saved else WindowAt(after=self.begin, seconds=self.first_seconds)
        self.plan.clear()
        self.parts.clear()
        self.rate = None
        return at if at.after < self.end else None

    def upper(self, at: WindowAt) -> datetime:
        return min(at.after + timedelta(seconds=at.seconds), self.end)

    def request(self, at: WindowAt) -> Request:
        return Request(self.path, self.params(at.after, self.upper(at)))

    def held(self, at: WindowAt) -> Answer | None:
        """The answer for ``at`` if it is the rest of a large answer already read (nothing to ask)."""
        part = self.parts.get(at)
        return Answer(part[0], size=part[2]) if part is not None else None

    def guess(self, at: WindowAt) -> WindowAt | None:
        """The window planned after ``at`` (planned now if it is not yet): with read-ahead several are asked at
        once, and ``step`` keeps to the plan, so a guess is wrong only after a split."""
        return self._following(at) if self.read_ahead > 1 else None

    def _following(self, at: WindowAt) -> WindowAt | None:
        planned = self.plan.get(at)
        if planned is not None:
            return planned
        upper = self.upper(at)
        if upper >= self.end:
            return None
        following = WindowAt(after=upper, seconds=self._size(at))
        self.plan[at] = following
        return following

    def _size(self, before: WindowAt) -> int:
        """The length of the window planned after ``before``: the one that holds ``target`` records at the rate
        seen last, at most 8 times ``before`` (so 8 times after an empty answer); before any answer, as long as
        ``before`` (read ahead from the first request on, a guess must not outgrow what the settings chose)."""
        if self.rate is None:
            return before.seconds
        if self.rate:
            return self._clamp(min(self.target / self.rate, before.seconds * 8.0))
        return self._clamp(before.seconds * 8.0)

    @property
    def target(self) -> int:
        return max(1, self.split_threshold // 2)

    def _clamp(self, seconds: float) -> int:
        return max(1, min(int(seconds), int(self.largest.total_seconds())))

    def step(self, at: WindowAt, answer: Answer) -> Step[WindowAt]:
        upper = self.upper(at)
        span = upper - at.after
        part = self.parts.pop(at, None)
        if part is not None:  # the next part of a large answer: records of its first ``part[1]`` seconds
            self.rate = len(part[0]) / part[1]
            return Step(part[0], self._next(at))
        if answer.too_slow is not None or answer.too_large is not None:
            if span <= ONE_SECOND and answer.too_large is not None:
                raise ApiError(f"{answer.too_large} (even for one second of orders)")
            if span <= ONE_SECOND:
                raise ApiError(f"{answer.too_slow} took too long even for one second of orders; {self.too_slow_hint}")
            return Step(None, self._refused(at, span, answer))
        records = answer.records
        seconds = span.total_seconds()
        large = len(records) > self.split_threshold
        if self.moment is None or not (large or (records and not self.rate)):
            self.rate = len(records) / seconds
            return Step(records, self._next(at))
        moments = self._moments(at.after, upper, records)
        if len(moments) < len(records):  # some record has no place on the axis: keep the answer in one piece
            self.rate = len(records) / seconds
            return Step(records, self._next(at))
        if large:
            return self._parts(at, records, moments, answer.size)
        # the first records after an empty stretch: the density where they are, at the end of the window
        moments.sort()
        self.rate = len(moments) / max(1.0, (upper - moments[0]).total_seconds())
        return Step(records, self._next(at))

    def revise(self, before: WindowAt, at: WindowAt, answer: Answer) -> WindowAt | None:
        """``at`` (planned after ``before``) was refused while the windows before it are still being used: cut it
        now, so that its parts are asked ahead like any planned window, instead of once the steps reach it a round
        trip later. Returns the first part (the window now planned after ``before``), or None: nothing to revise
        (``step`` raises for a refused second)."""
        span = self.upper(at) - at.after
        if (answer.too_slow is None and answer.too_large is None) or span <= ONE_SECOND or \
                self.plan.get(before) != at:
            return None
        first = self._refused(at, span, answer)
        self.plan[before] = first
        return first

    def _refused(self, at: WindowAt, span: timedelta, answer: Answer) -> WindowAt:
        if answer.oversize and answer.oversize > 2:  # it said how large: cut once, parts of 1/8 of the limit
            return self._cut(at, span, math.ceil(8 * answer.oversize))
        return self._cut(at, span)

    def _next(self, at: WindowAt) -> WindowAt | None:
        following = self._following(at)
        self.plan.pop(at, None)
        return following

    def _parts(self, at: WindowAt, records: list[Record], moments: list[datetime], size: int | None,
               ) -> Step[WindowAt]:
        """A complete answer with more than ``split_threshold`` records, as parts of about ``target`` records cut
        at whole seconds: the first is stored now; each later part is the answer held for the rest of the window,
        so the state stored with a part names the rest (a killed run asks for it), and no request is made."""
        upper = self.upper(at)
        ranked = sorted(zip(moments, range(len(records)), strict=True))
        cuts: list[int] = []  # seconds from ``at.after`` where a part ends
        index = 0
        while len(ranked) - index > self.split_threshold:
            first = int((ranked[index][0] - at.after).total_seconds())
            cut = int((ranked[index + self.target][0] - at.after).total_seconds())
            if cut <= first:  # the part's records all share one second: the part ends after it
                cut = first + 1
            if at.after + timedelta(seconds=cut) >= upper:
                break
            cuts.append(cut)
            while index < len(ranked) and ranked[index][0] < at.after + timedelta(seconds=cut):
                index += 1
        if not cuts:
            self.rate = len(records) / (upper - at.after).total_seconds()
            return Step(records, self._next(at))
        bounds = [0, *cuts]
        pieces: list[list[Record]] = [[] for _ in bounds]
        piece = 0
        for moment, n in ranked:
            while piece + 1 < len(bounds) and moment >= at.after + timedelta(seconds=bounds[piece + 1]):
                piece += 1
            pieces[piece].append(records[n])
        following = self.plan.pop(at, None)
        previous = at
        for n, start in enumerate(cuts):
            rest = WindowAt(after=at.after + timedelta(seconds=start), seconds=at.seconds - start)
            stop = cuts[n + 1] if n + 1 < len(cuts) else (upper - at.after).total_seconds()
            self.parts[rest] = (pieces[n + 1], max(1.0, stop - start), size)
            self.plan[previous] = rest
            previous = rest
        if following is not None:
            self.plan[previous] = following
        last, seconds, _ = self.parts[previous]
        self.rate = len(last) / seconds  # the windows planned from now on follow the latest part
        return Step(pieces[0], self._next(at))

    def _cut(self, at: WindowAt, span: timedelta, parts: int = 2) -> WindowAt:
        """Cut a window whose answer was dropped into ``parts`` windows of equal whole seconds (halve it, by
        default), the last one to its end: the first is asked next, then the others (read ahead together), then
        the windows already planned after it (their requests may be answered already)."""
        total = int(span.total_seconds())
        size = max(1, total // parts)
        count = max(1, min(parts, total // size))
        pieces = [WindowAt(after=at.after + timedelta(seconds=size * n), seconds=size) for n in range(count - 1)]
        pieces.append(WindowAt(after=at.after + timedelta(seconds=size * (count - 1)),
                               seconds=total - size * (count - 1)))
        after = self.plan.pop(at, None)
        for piece, following in itertools.pairwise(pieces):
            self.plan[piece] = following
        if after is not None:
            self.plan[pieces[-1]] = after
        return pieces[0]

    def _moments(self, after: datetime, before: datetime, records: list[Record]) -> list[datetime]:
        """The records' places on the window axis (those that have one). A record changed while the answer was
        being written may have moved out of the window: it counts at the window's edge. Most records outside it
        stop the pass: a server that ignores the filters would answer the same records to every window."""
        assert self.moment is not None
        moments: list[datetime] = []
        outside: list[datetime] = []
        last = before - timedelta(microseconds=1)
        for record in records:
            moment = self.moment(record)
            if moment is None:
                continue
            if not after <= moment < before:
                outside.append(moment)
                moment = min(max(moment, after), last)
            moments.append(moment)
        if len(outside) * 2 > len(records):
            raise ApiError(
                f"{self.path} answered records outside the window asked for ({outside[0].isoformat()} is not in "
                f"[{after.isoformat()}, {before.isoformat()})): the API seems to ignore the date filters; stopped")
        return moments


class KeysetAt(Position):
    """Where a :class:`Keyset` pass stands. Two ways to ask the next page of one query (the range from ``since``):

    * by keyset (``start`` None): ``page`` of the query from ``since``, dropping ``skip``;
    * by index (``start`` set): ``start_index = start``, the index of ``anchor`` (the record read last) in the same
      query, so the answer must begin with it. Every such page can be predicted (read-ahead); the anchor proves
      that no record entered or left the query before it meanwhile (else the next request starts from the anchor's
      creation time by keyset).
    """

    range: int = 0  # index of the creation range
    since: str | None = None  # keyset: the creation time of the last record read (None: the range's start)
    skip: tuple[str, ...] = ()  # ids already read at ``since`` (or on earlier pages sharing one instant)
    page: int = 1
    per_page: int | None = None  # the page size the server answered with
    range_modified: str | None = None  # Last-Modified of the range's first answer
    start: int | None = None  # by index: 1-based index of ``anchor`` in the query from ``since``
    anchor: str | None = None  # by index: id of the record read last (the answer's first record must be it)
    anchor_at: str | None = None  # by index: its creation time (where a keyset request resumes if it moved)
    total: int | None = None  # by index: the records the query held at its last answer (read-ahead stops there)


@dataclass
class Keyset:
    """Creation ranges read in ascending creation order, with read-ahead inside a range checked by a keyset anchor.

    A range's first request (and every request after a surprise) is a keyset request: the range from ``since``,
    the creation time of the last record read, dropping the records already read at that instant (records entering
    or leaving the result while we page cannot push an unread record past us; when a whole page shares one instant
    the next page number is asked instead). Once an answer announces the query's ``total_items``, the rest of the
    same query is read by index: each request asks ``start_index`` = the index of the last record read (the
    *anchor*), one record of overlap. Those requests are known in advance, so ``read_ahead`` of them are in flight
    at once (then the next ranges' first pages). An answer that does not begin with the anchor means records
    entered or left before it since: it is dropped and the query restarts by keyset from the anchor's creation time,
    so nothing is lost and nothing read twice, whatever order the answers arrive in and after a resume. A page
    whose last two records share one creation instant continues by keyset (a server may order such ties
    differently from one request to the next). After ``patience`` such restarts in a row (a server ignoring
    ``start_index``) the pass reads by keyset only.

    A range's first request may be conditional (``If-Modified-Since``): 304 means nothing changed in it. When a
    range is complete its ``Last-Modified`` goes into the step's memo under the range's key.
    """

    path: str
    params: Callable[[datetime, datetime, KeysetAt], dict[str, Any]]  # query for a range from a position
    ranges: list[tuple[datetime, datetime]]
    key: Callable[[datetime], str]  # a range's name in the state
    id_of: Callable[[Record], str]
    created: Callable[[Record], datetime | None]
    stored: dict[str, str]  # each range's Last-Modified from earlier runs, by key
    conditional: Callable[[str | None], dict[str, str]]  # headers of a range's first request, from its stored value
    clamp: Callable[[str], str | None]  # the Last-Modified to remember for a completed range
    read_ahead: int = 1
    eager: ClassVar[bool] = True  # every range's first page is needed in any pass: ask them from the first on
    spare: int = 0  # predicted pages sent ahead of the caller's use (see :func:`paginate`)
    patience: int = 3  # restarts in a row after which index requests are given up for the pass
    restarts: int = 0
    by_index: bool = True
    dense: bool = False  # the last query answered held more than one page

    def start(self, saved: dict[str, Any] | None) -> KeysetAt | None:
        at = KeysetAt.model_validate(saved) if saved else KeysetAt()
        return at if at.range < len(self.ranges) else None

    @staticmethod
    def _first(at: KeysetAt) -> bool:
        return at.since is None and at.page == 1 and at.start is None

    def request(self, at: KeysetAt) -> Request:
        lo, hi = self.ranges[at.range]
        headers = self.conditional(self.stored.get(self.key(lo))) if self._first(at) else {}
        return Request(self.path, self.params(lo, hi, at), headers)

    def guess(self, at: KeysetAt) -> KeysetAt | None:
        """The next index page of the same query while the known total says there is one, else the first page of
        the next creation range (ranges are independent). After a keyset page, its index pages are guessed too
        when the last query answered held more than a page (``dense``: the next range of a dense stretch, a
        restart inside one), so that a new range does not wait for its first answer to be used before its pages
        are asked. A guess needs only what the request is made of: its anchor is filled in by the step that
        reaches it."""
        if self.read_ahead <= 1:
            return None
        size = at.per_page
        if self.by_index and size and size > 1:
            if at.start is not None and (at.total is None or at.start + size - 1 < at.total):
                return KeysetAt(range=at.range, since=at.since, skip=at.skip, start=at.start + size - 1,
                                per_page=size, total=at.total)
            if at.start is None and self.dense:  # a keyset page, full like the last query's: its index pages
                return KeysetAt(range=at.range, since=at.since, skip=at.skip, start=at.page * size, per_page=size)
        if at.range + 1 >= len(self.ranges):
            return None
        return KeysetAt(range=at.range + 1, per_page=at.per_page)

    def step(self, at: KeysetAt, answer: Answer) -> Step[KeysetAt]:
        lo, _ = self.ranges[at.range]
        key = self.key(lo)
        if self._first(at):
            modified = self.stored.get(key) if answer.not_modified else answer.last_modified
            at = at.model_copy(update={"range_modified": modified})
        if answer.not_modified:
            self.dense = False
            return self._range_done(at, [], key)
        answered = answer.records
        size = answer.page_size or len(answered) or 1
        if answer.total_items is not None:
            self.dense = answer.total_items > size
        fresh = answered
        if at.anchor is not None:
            if not answered or self.id_of(answered[0]) != at.anchor:
                self.restarts += 1
                self.by_index = self.by_index and self.restarts < self.patience
                return Step(None, self._from_anchor(at))  # shifted: this answer is not used
            self.restarts = 0
            fresh = answered[1:]  # the anchor itself was read already
        skip = set(at.skip)
        records = [r for r in fresh if self.id_of(r) not in skip]
        first = at.start if at.start is not None else (at.page - 1) * size + 1
        last = first + len(answered) - 1  # the index of the answer's last record in the query
        done = len(answered) < size or (answer.total_items is not None and last >= answer.total_items) or (
            at.start is None and answer.total_pages is not None and (answer.page_index or at.page) >=
            answer.total_pages)
        if done:
            return self._range_done(at, records, key)
        return Step(records, self._advance(at, answered, size, last, answer.total_items))

    def _range_done(self, at: KeysetAt, records: list[Record], key: str) -> Step[KeysetAt]:
        kept = self.clamp(at.range_modified) if at.range_modified else None
        following = KeysetAt(range=at.range + 1, per_page=at.per_page)
        return Step(records, following if following.range < len(self.ranges) else None, {key: kept} if kept else {})

    def _from_anchor(self, at: KeysetAt) -> KeysetAt:
        """Keyset from the anchor's creation time: the anchor is the only record read at that instant (an index
        page ends on an instant of its own), so it is the only one to drop."""
        assert at.anchor is not None and at.anchor_at is not None
        return KeysetAt(range=at.range, since=at.anchor_at, skip=(at.anchor,), per_page=at.per_page,
                        range_modified=at.range_modified)

    def _advance(self, at: KeysetAt, answered: list[Record], size: int, last_index: int,
                 total: int | None) -> KeysetAt:
        lo, _ = self.ranges[at.range]
        bound = datetime.fromisoformat(at.since) if at.since else lo
        created = [self.created(r) for r in answered]
        last = created[-1] if created else None
        if last is None or last <= bound:
            if at.start is not None:  # an index page that does not move forward: ask again by keyset
                return self._from_anchor(at)
            return at.model_copy(update={"page": at.page + 1, "per_page": size,
                                         "skip": tuple(sorted({*at.skip, *(self.id_of(r) for r in answered)}))})
        tie = len(created) < 2 or created[-2] is None or created[-2] >= last
        if self.by_index and total is not None and size > 1 and not tie:
            return at.model_copy(update={"start": last_index, "anchor": self.id_of(answered[-1]),
                                         "anchor_at": last.isoformat(), "per_page": size, "total": total})
        at_last = tuple(self.id_of(r) for r, c in zip(answered, created, strict=True) if c == last)
        return KeysetAt(range=at.range, since=last.isoformat(), skip=at_last, per_page=size,
                        range_modified=at.range_modified)


# --- the one paging loop ----------------------------------------------------------------------------------------
async def paginate(
    fetch: Callable[[Request], Awaitable[Answer]], paginator: Paginator[P], at: P | None,
    max_record_bytes: int | None = None,
) -> AsyncGenerator[tuple[P, Step[P]], None]:
    """Ask ``paginator``'s positions from ``at`` on and yield each with its step, strictly in order.

    Up to ``read_ahead`` positions are asked at once (only after a first answer said there is more, unless the
    paginator is ``eager``: every position it guesses is needed whatever the answers say): ``at`` and the chain of
    positions ``guess`` predicts after it. An answer is kept for the request it answers, so a guessed position that
    the steps reach later (the next creation range after a range's further pages, the next date window after a split
    one) uses the answer already fetched: a request the new chain no longer predicts is kept too (answered or on its
    way; the latest ``read_ahead`` + ``spare`` of them, counted among the unanswered) in case a later chain predicts
    it again (then it is not asked twice). A paginator with ``revise`` may replace a guessed position whose answer
    is in before the steps reach it (a refused date window: its parts are asked at once). A position whose answer
    the paginator already ``held`` (a part of a large date-window answer) is not asked. The requests that follow a
    step are sent before the step is yielded (with those that answers arrived meanwhile free a connection for), and
    the event loop is let turn until they are on the wire, so that they are in flight while the caller works on the
    page and stores it (at most ``read_ahead`` answers wait to be used). A paginator whose guesses are rarely wrong
    may declare ``spare`` (default 0): that many further predicted positions are sent whenever an answer arrives and
    fewer than ``read_ahead`` are unanswered, so the requests in flight do not wait for the caller to use the
    answers before them (at most ``read_ahead`` + ``spare`` answers wait to be used). Steps, and so checkpoints,
    stay strictly in order. :class:`LoopGuard` stops a pass whose pages never end; a record larger than
    ``max_record_bytes`` stops it before its page is stored.
    """
    inflight: dict[Hashable, asyncio.Task[Answer]] = {}  # sent: unanswered, or answered and not used yet
    kept: dict[Hashable, asyncio.Task[Answer]] = {}  # sent, no longer predicted: used if a chain predicts it again
    queued: list[tuple[Hashable, Request]] = []  # predicted, sent as soon as fewer than ``window`` are unanswered
    held: Callable[[P], Answer | None] = getattr(paginator, "held", lambda _at: None)  # nothing to ask for these
    revise: Callable[[P, P, Answer], P | None] | None = getattr(paginator, "revise", None)
    guard = LoopGuard()
    window = max(1, paginator.read_ahead) if getattr(paginator, "eager", False) else 1
    spare = getattr(paginator, "spare", 0)

    unsent = 0  # requests launched when an answer arrived, not yet let reach the wire (see ``ask``)
    arrivals = 0  # answers of this pass arrived so far

    def arrived(asked_after: int) -> Callable[[asyncio.Task[Answer]], None]:
        """Stamps an answer with its place among the pass's answers, and theirs when it was asked."""
        def stamp(task: asyncio.Task[Answer]) -> None:
            nonlocal arrivals
            if _answered(task):
                arrivals += 1
                task.result().arrived, task.result().asked_after = arrivals, asked_after
        return stamp

    def launch(done: object = None) -> int:
        nonlocal unsent
        launched = 0
        while queued and sum(not task.done() for task in [*inflight.values(), *kept.values()]) < window:
            key, request = queued.pop(0)
            task = asyncio.ensure_future(fetch(request))
            task.add_done_callback(arrived(arrivals))
            task.add_done_callback(launch)  # a slot frees when an answer arrives, not when it is used
            inflight[key] = task
            launched += 1
        if done is not None:
            unsent += launched
        return launched

    def revised(before: P, at: P) -> P:
        """``at``, or what the paginator puts in its place now that its answer is in (see ``revise``)."""
        while revise is not None and held(at) is None:
            key = _request_key(paginator.request(at))
            task = inflight.get(key) or kept.get(key)
            replaced = revise(before, at, task.result()) if task is not None and _answered(task) else None
            if replaced is None:
                break
            inflight.pop(key, None)
            kept.pop(key, None)
            at = replaced
        return at

    async def ask(first: P) -> tuple[Request, Hashable]:
        """Send ``first`` and the positions ``guess`` predicts after it (``window`` unanswered at most, ``spare``
        more queued; a held answer takes no place) that are not sent yet; keep aside what is sent and no longer
        predicted. ``first`` is always sent unless held (if need be, in the place of the latest position sent).
        Returns ``first``'s request and its key."""
        nonlocal unsent
        depth = window + (spare if window > 1 else 0)
        chain = [first]
        asked = int(held(first) is None)
        while asked < depth:
            guessed = paginator.guess(chain[-1])
            if guessed is None:
                break
            guessed = revised(chain[-1], guessed)
            chain.append(guessed)
            asked += held(guessed) is None
        requests = [paginator.request(p) for p in chain]
        keys = [_request_key(r) for r in requests]
        wanted = [(k, r) for k, r, p in zip(keys, requests, chain, strict=True) if held(p) is None]
        queued.clear()
        back = [(k, kept.pop(k)) for k in keys if k in kept and k not in inflight]  # predicted again
        dropped = [(k, inflight.pop(k)) for k in [k for k in inflight if k not in keys]]
        kept.update((k, t) for k, t in dropped if not t.done() or _answered(t))
        inflight.update((k, t) for k, t in back if not t.done() or _answered(t))
        # failed while nobody predicted it: that error is nobody's (predicted again, it is asked again)
        ended = [t for _k, t in [*dropped, *back] if t.done() and not _answered(t)]
        while len(kept) > window + spare:  # the oldest go first: the least likely to be predicted again
            ended.append(kept.pop(next(iter(kept))))
        await cancel_all(ended)
        queued.extend((k, r) for k, r in wanted if k not in inflight)
        launched = launch()
        if held(first) is None and keys[0] not in inflight:  # every slot taken by later or unpredicted positions
            unpredicted = [k for k, t in kept.items() if not t.done()]
            if unpredicted:
                await cancel_all([kept.pop(unpredicted[0])])
            else:
                latest = next(k for k in reversed(keys) if k in inflight and not inflight[k].done())
                await cancel_all([inflight.pop(latest)])  # it waits for a slot again, after ``first``
            queued[:] = [(k, r) for k, r in wanted if k not in inflight]
            launched += launch()
        if launched or unsent:  # also those launched by an answer while the caller worked without a pause
            unsent = 0
            await _on_the_wire()
        return requests[0], keys[0]

    sent = False  # the requests of ``at`` and its chain were sent before the step before it was yielded
    try:
        while at is not None:
            if not sent:
                request, key = await ask(at)
            ready = held(at)
            if ready is not None:
                answer = ready
            else:
                answer = await inflight[key]  # still counted as unanswered while awaited
                del inflight[key]
                answer.moved = guard.moved
            step = paginator.step(at, answer)
            if step.records is None and step.next == at:  # asked again: what is in flight was sent before it
                await cancel_all([*inflight.values(), *kept.values()])
                inflight.clear()
                kept.clear()
            window = max(1, paginator.read_ahead)
            sent = step.next is not None
            asked = request
            if step.next is not None:  # the next requests leave before this page is checked and stored, not after
                if window > 1:
                    await asyncio.sleep(0)  # answers in meanwhile free their connections for the next requests
                request, key = await ask(step.next)
            if step.records is not None:
                step.rendered = guard.check(asked.path, at, answer, step.records)
                if max_record_bytes is not None:
                    _check_sizes(asked.path, answer, step.records, max_record_bytes)
            yield at, step
            at = step.next
    finally:
        queued.clear()
        await cancel_all([*inflight.values(), *kept.values()])


SEND_TURNS = 8  # event-loop turns from a request's task to its bytes on the socket: 4 (through HttpClient and
# httpx, on a kept-alive connection), twice over


async def _on_the_wire() -> None:
    """Let requests just launched reach the socket. A task only starts when the event loop turns, and a caller
    that works through answers already in (parsing, normalizing, handing pages to the writer) never lets it turn:
    its next requests would leave only after that work, and each would wait its whole round trip on top."""
    for _ in range(SEND_TURNS):
        await asyncio.sleep(0)


def _answered(task: asyncio.Task[Answer]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _request_key(request: Request) -> Hashable:
    """A request's identity: the same request gets the same answer, whichever position asked it."""
    return orjson.dumps([request.path, request.params, request.headers], option=orjson.OPT_SORT_KEYS,
                        default=str)


class SeenRecords:
    """The digests of the records a pass has read, in about 8 bytes each. A set of Python ints takes about 60 per
    digest, and a first run reads a whole history in one pass: a sync's memory grew by 6 MB per 100,000 orders.
    The latest digests are a set; every ``RUN`` of them becomes a sorted array, searched by bisection. Nothing is
    forgotten: a server that starts over after a long list is still caught."""

    RUN = 16384

    def __init__(self) -> None:
        self._latest: set[int] = set()
        self._runs: list[array[int]] = []

    def __contains__(self, digest: int) -> bool:
        if digest in self._latest:
            return True
        for run in self._runs:
            at = bisect.bisect_left(run, digest)
            if at < len(run) and run[at] == digest:
                return True
        return False

    def update(self, digests: Iterable[int]) -> None:
        self._latest.update(digests)
        if len(self._latest) >= self.RUN:
            self._runs.append(array("q", sorted(self._latest)))
            self._latest = set()


@dataclass
class LoopGuard:
    """Stops a pass whose pages never end: an answer identical to the one before it, or ``patience`` answers in a
    row that bring no record not already read in this pass (a server ignoring its paging parameters)."""

    patience: int = 5
    previous: list[Record] | None = None
    seen: SeenRecords = field(default_factory=SeenRecords)
    idle: int = 0
    moved: bool = False  # a page checked in this pass began with a record already read: the list moved

    def check(self, path: str, position: BaseModel, answer: Answer, records: list[Record]) -> list[bytes]:
        """Raise when the pass loops; else each record as JSON text (what its digest is taken of)."""
        at = ", ".join(f"{k}={v}" for k, v in position.model_dump(mode="json").items() if v not in (None, [], ()))
        if answer.records and answer.records == self.previous:
            raise ApiError(f"{path} ({at}) answered the same records as the request before it: the API seems to "
                           "ignore the paging parameters; stopped (the pages before are stored)")
        self.previous = answer.records
        rendered = [orjson.dumps(r) for r in records]
        digests = [hash(text) for text in rendered]  # one server renders a record the same way each time
        self.moved = self.moved or (bool(digests) and digests[0] in self.seen)
        fresh = any(digest not in self.seen for digest in digests)  # mostly decided by the first record
        self.seen.update(digests)
        self.idle = self.idle + 1 if answer.records and not fresh else 0
        if self.idle >= self.patience:
            raise ApiError(f"{path} ({at}): {self.patience} answers in a row brought nothing new: the API seems to "
                           "ignore the paging parameters; stopped (the pages before are stored)")
        return rendered


def _check_sizes(path: str, answer: Answer, records: list[Record], limit: int) -> None:
    """Refuse a record larger than ``limit`` (its ``raw`` would be stored whole). Free for a body smaller than the
    limit, which cannot hold such a record: only larger bodies are measured record by record."""
    if answer.size is not None and answer.size <= limit:
        return
    for record in records:
        size = len(orjson.dumps(record))
        if size > limit:
            ident = next((record[k] for k in ("id", "order_reference", "order_id") if k in record), None)
            which = f"id {ident!r}" if isinstance(ident, str | int) else "without an id"
            raise ApiError(f"{path} answered a record ({which}) of {size:,} bytes, more than max_record_mb = "
                           f"{limit / (1024 * 1024):.3g}; its page was not stored. Raise max_record_mb in the "
                           "source's section if such records are real")


# --- the rolling sweep ------------------------------------------------------------------------------------------
class Sweep(BaseModel):
    """Where the rolling sweep stands, stored in the stream state: this lap has re-read creation days
    ``[origin, next)``; ``next`` is the oldest day not re-read since ``lap_started``."""

    model_config = ConfigDict(extra="forbid")

    origin: date  # where a lap starts: the oldest creation day known
    next: date  # the oldest unswept day of this lap
    due: datetime  # slices are paced from here: the history re-read so far, in time (at most one period behind)
    lap_started: datetime
    oldest: date | None = None  # the oldest creation day seen in this lap: the next lap's origin


class SweepSlice(BaseModel):
    """The creation days ``[start, end)`` one run re-reads, fixed when the run is planned (a resumed run reads the
    same slice)."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date
    planned: datetime
    origin: date  # the lap's origin (a new lap may start at a newly learned one)
    new_lap: bool = False
    span: int  # days in the lap when planned: the pace is span days per period


FLOOR = date(2000, 1, 1)


@dataclass
class RollingSweep:
    """Re-reads the creation days older than what an incremental run reads, one slice per run, so that every day
    is read again within ``period`` (zero: off). A slice is as long as the time since the last one allows
    (``span × elapsed / period`` days, whole days, owing at most one lap), so the cost per run is bounded and
    proportional to how often runs happen. ``horizon`` is the first day the incremental passes already cover;
    ``day`` puts a record's creation time on the API's day axis. Until a full pass or a lap has shown where the
    history begins, a lap starts at ``floor``.
    """

    period: timedelta
    horizon: Callable[[Any, datetime], date | None]
    day: Callable[[datetime], date]
    floor: date = FLOOR

    def plan(self, sweep: Sweep | None, state: Any, now: datetime) -> SweepSlice | None:
        horizon = self.horizon(state, now)
        if sweep is None or horizon is None or self.period <= timedelta(0):
            return None
        new_lap = sweep.next >= horizon
        origin = (sweep.oldest or sweep.origin) if new_lap else sweep.origin
        start = origin if new_lap else sweep.next
        span = (horizon - origin).days
        if span <= 0 or start >= horizon:
            return None
        owed = min(now - sweep.due, self.period)
        days = int(span * (owed / self.period))
        if days < 1:
            return None
        end = min(start + timedelta(days=days), horizon)
        return SweepSlice(start=start, end=end, planned=now, origin=origin, new_lap=new_lap, span=span)

    def fold(self, sweep: Sweep | None, run: RunProgress, full: bool) -> Sweep:
        """The sweep after a completed run: started by a full pass (or by any run, at ``floor``, for a state from
        before the sweep), advanced by a sweep pass."""
        seen = self.day(run.oldest) if run.oldest is not None else None
        planned = run.sweep.planned if run.sweep else (run.planned or run.started)
        if full or sweep is None:
            origin = seen if full and seen is not None else self.floor
            return Sweep(origin=origin, next=origin, due=planned, lap_started=planned)
        if run.sweep is None:
            return sweep
        cut = run.sweep
        oldest = seen if cut.new_lap or sweep.oldest is None else min(sweep.oldest, seen or sweep.oldest)
        due = sweep.due + (cut.end - cut.start).days * self.period / cut.span
        due = max(min(due, cut.planned), cut.planned - self.period)
        return Sweep(origin=cut.origin, next=cut.end, due=due, oldest=oldest,
                     lap_started=cut.planned if cut.new_lap else sweep.lap_started)


# --- declared streams -------------------------------------------------------------------------------------------
class RunProgress(BaseModel):
    """A run in progress, stored with every page: which pass, where in it, and what it has seen so far."""

    model_config = ConfigDict(extra="forbid")

    passes: list[str]
    index: int = 0
    started: datetime  # when the run started, minus the look-back: no cursor moves past it
    end: datetime | None = None  # where window paginators stop (on the API's own time axis)
    position: dict[str, Any] | None = None
    seen_max: datetime | None = None  # the latest cursor-field value seen in this pass
    seen_max_id: int | None = None  # the highest numeric id seen in this pass
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
            at = ", ".join(f"{k}={v}" for k, v in (self.run.position or {}).items() if v not in (None, (), []))
            shown["resumes"] = f"pass {self.run.current}" + (f" at {at}" if at else "")
        return shown


@dataclass
class Stream(Generic[S]):
    """One stream, declared by its API; :func:`read_stream` does the rest.

    ``passes`` names the passes of a new run given the stored state (e.g. ``["all"]`` on the first run,
    ``["new", "updated"]`` later); ``paginator`` builds the paginator of one pass from the state; ``finish``
    folds a completed pass (``state.run`` holds what it saw) into the state; ``cursor`` reads a record's
    cursor-field value and ``record_id`` its numeric id, if the stream tracks them.
    """

    name: str
    state: type[S]
    filters: dict[str, Any]
    passes: Callable[[S], list[str]]
    paginator: Callable[[str, S], Paginator[Any]]
    finish: Callable[[str, S], S]
    normalize: Callable[[Record], Rows]
    lookback: timedelta = timedelta(0)
    cursor: Callable[[Record], datetime | None] | None = None
    record_id: Callable[[Record], int | None] | None = None
    created: Callable[[Record], datetime | None] | None = None  # a record's creation time (where history begins)
    sweep: RollingSweep | None = None  # adds a ``sweep`` pass to incremental runs (see :class:`RollingSweep`)
    full_pass: str = "all"  # the pass that reads everything (a run with it needs no sweep)
    run_end: Callable[[], datetime | None] = lambda: None
    now: Callable[[], datetime] = field(default=lambda: _utc_now())

    def rows(self, records: list[Record]) -> Rows:
        return Rows.latest(self.normalize(r) for r in records)


def _utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(microsecond=0)


async def read_stream(
    stream: Stream[S], fetch: Callable[[Request], Awaitable[Answer]], state: S, max_record_bytes: int | None = None,
) -> AsyncGenerator[Page, None]:
    """Every page of ``stream`` from ``state`` on, each with the state that is true once the page is stored.

    A run that resumes passes an earlier (killed) run planned reads them to the end, then plans and reads its own
    incremental passes too: the resumed passes only see changes up to the moment they were planned, and a run
    must hold every change the API had when it started."""
    state = state.model_copy(deep=True)
    resumed = state.run is not None
    if state.run is None:
        state.run = _plan(stream, state, sweep=True)
    while state.run is not None:
        run = state.run
        paginator = stream.paginator(run.current, state)
        start = paginator.start(run.position)
        pages = paginate(fetch, paginator, start, max_record_bytes)
        finished = False
        async with contextlib.aclosing(pages):
            async for _position, step in pages:
                run = state.run.model_copy(deep=True)
                _observe(stream, run, step.records or [])
                run.memo.update(step.memo)
                if step.next is None:
                    finished = True
                    state = _finish_pass(stream, state, run)
                else:
                    run.position = step.next.model_dump(mode="json")
                    state = state.model_copy(update={"run": run})
                if step.records is not None or finished:
                    yield Page(step.records or [], state.model_copy(deep=True), rendered=step.rendered)
                if finished:
                    break
        if not finished and state.run is not None:  # nothing to ask in this pass: complete it without a request
            state = _finish_pass(stream, state, state.run)
            yield Page([], state.model_copy(deep=True))
        if state.run is None and resumed:
            resumed = False
            state.run = _plan(stream, state, sweep=False)


def _plan(stream: Stream[S], state: S, sweep: bool) -> RunProgress:
    """The passes of a new run (and its slice of the rolling sweep, when asked and the stream has one)."""
    now = stream.now()
    passes = stream.passes(state)
    cut = stream.sweep.plan(state.sweep, state, now) if sweep and stream.sweep and stream.full_pass not in passes \
        else None
    return RunProgress(passes=[*passes, "sweep"] if cut else passes, started=now - stream.lookback,
                       end=stream.run_end(), planned=now, sweep=cut)


def _observe(stream: Stream[Any], run: RunProgress, records: list[Record]) -> None:
    """Fold a page's records into what the pass has seen: the latest cursor value, the highest id, the earliest
    creation time (in locals, set on the model once a page: a model attribute per record cost a fifth of it)."""
    cursor, record_id, created_of = stream.cursor, stream.record_id, stream.created
    seen_max, seen_max_id, oldest = run.seen_max, run.seen_max_id, run.oldest
    for record in records:
        if cursor is not None:
            seen_max = later(seen_max, cursor(record))
        if record_id is not None:
            rid = record_id(record)
            if rid is not None and (seen_max_id is None or rid > seen_max_id):
                seen_max_id = rid
        if created_of is not None:
            created = created_of(record)
            if created is not None and (oldest is None or created < oldest):
                oldest = created
    run.seen_max, run.seen_max_id, run.oldest = seen_max, seen_max_id, oldest


def _finish_pass(stream: Stream[S], state: S, run: RunProgress) -> S:
    state = stream.finish(run.current, state.model_copy(update={"run": run}))
    if stream.sweep is not None and run.current in (stream.full_pass, "sweep"):
        state = state.model_copy(update={"sweep": stream.sweep.fold(state.sweep, run, run.current != "sweep")})
    if run.index + 1 < len(run.passes):
        following = RunProgress(passes=run.passes, index=run.index + 1, started=run.started, end=run.end,
                                planned=run.planned, sweep=run.sweep)
        return state.model_copy(update={"run": following})
    if stream.sweep is not None and state.sweep is None:  # a state from before the sweep: start one at the floor
        state = state.model_copy(update={"sweep": stream.sweep.fold(None, run, False)})
    return state.model_copy(update={"run": None})
