"""The one loop: the passes of a run, each read as slices, ``concurrency`` slices at once.

**The slice rule.** Concurrency is only ever between slices, never between the pages of one slice. A slice that
fits in one answer cannot shift at all. A slice read over several pages is read strictly one page after another
(page n+1 is asked once page n is answered), and is one that records can enter but never leave while it is read
(creation-time slices that end before the run started; an update moves no record out of them): a record that
enters can at worst be read twice. Only a slice of one unit is ever paged (a fuller one is asked again as smaller
slices), and where a deletion could still shift it, the reader reads its pages from the last one down and the first
again (new records only join the end), or reads it again until a reading brings nothing older that it lacked.

**The state.** A slice is marked complete (merged into ``run.done``) with the page that completes it, in the same
transaction; a killed run reads the gaps between complete slices again, in any order. Pages are stored in the
order they are handed over, so a slice's earlier pages are always stored before the one that completes it.

**The path of one page**, from the sync down to the network and back, one level per job:

1. :func:`ordersync.sync._sync_stream` loads the typed state and iterates :func:`read_stream`; its ``_pipeline``
   normalizes each page (``stream.normalize``) and stores it with its state in one transaction.
2. :func:`read_stream`, *the passes*: ``stream.passes`` names them, ``stream.plan`` turns each into a
   :class:`SlicePlan`; each chunk read becomes a :class:`~ordersync.model.Page` with the state that is true once
   it is stored (what the pass has seen through ``stream.cursor``, ``record_id``, ``created``; the complete
   slices); a pass's end goes through ``stream.finish``.
3. :func:`read_slices`, *the slices*: cuts the span into slices (the plan's carver), reads ``concurrency`` of them
   at once, each in its own task, and hands their chunks on in the order they arrive, checked, with the slices
   they complete.
4. :meth:`_Reading.read`, *one slice*: runs the plan's reader (:mod:`ordersync.paging.readers`), which asks
   ``fetch`` (the client's: one request, one :class:`Answer`) page after page.

Levels 3 and 4 cannot be one loop: a slice's reader awaits its own answers while the others await theirs, and a
queue as long as the concurrency joins them (and holds the readers back when storing is slower). Level 2 is apart
from level 3 so that the slices know nothing of passes and state (the tests read slices alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson

from ordersync.cursor import later
from ordersync.model import Page, Record
from ordersync.paging.guard import check_places, check_sizes
from ordersync.paging.slices import Span, gaps, merge
from ordersync.paging.stream import Chunk, Fetch, RunProgress, S, SlicePlan, Stream
from ordersync.tasks import cancel_all

Handed = tuple[int, Span, Chunk | BaseException]  # the slice's ticket, its span, what it handed over


@dataclass
class Gap:
    """A stretch still to read: cut into slices at the density seen, or read ``whole`` (where an answer showed it
    is sparse: beyond the records of a full answer, or beyond a slice that came back empty)."""

    lo: int
    hi: int
    whole: bool = False
    dense: bool = False  # a slice refused whole (too large, too slow) left it: an empty part says nothing of the rest


class _Reading:
    """The slices of one pass being read: the gaps still to read, the slices in flight, the complete ones."""

    def __init__(self, plan: SlicePlan, done: list[Span], fetch: Fetch) -> None:
        self.plan, self.fetch, self.done = plan, fetch, done
        self.todo = [Gap(lo, hi) for lo, hi in gaps(plan.span, done)]
        self.active: dict[int, asyncio.Task[None]] = {}  # started, not settled: at most twice the concurrency
        self.fetching: set[int] = set()  # started, still asking: at most the concurrency
        self.tickets = itertools.count()  # a slice asked again (too dense) is another slice, with its own ticket
        self.from_dense: set[int] = set()  # the slices cut from a stretch known to be dense
        self.handed: asyncio.Queue[Handed] = asyncio.Queue(maxsize=2 * max(1, plan.concurrency))
        self.up = plan.oldest_first  # slices are cut from the end the API answers first, where its records are

    async def read(self, ticket: int, part: Span) -> None:
        """Read one slice (level 4, in its own task): its reader's chunks go on the queue. Once its last answer is
        in, what it showed sizes the next slices and they start at once, not when the caller has stored this one
        (the caller may be busy storing while the network idles)."""
        count = 0
        try:
            async for chunk in self.plan.read(part, self.fetch):
                count += self.within(part, chunk.records)
                if chunk.last or chunk.denser is not None:
                    self.learn(ticket, part, chunk, count)
                    self.fetching.discard(ticket)
                    self.launch()
                await self.handed.put((ticket, part, chunk))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
            self.fetching.discard(ticket)
            await self.handed.put((ticket, part, exc))

    def within(self, part: Span, records: list[Record]) -> int:
        """How many of ``records`` the part holds (those without a place too): what sizes the next slices, not
        the records of the wider span its bounds may cover (``SlicePlan.covered``)."""
        place = self.plan.place
        if place is None or self.plan.covered is None:
            return len(records)
        return sum(p is None or part[0] <= p < part[1] for p in map(place, records))

    def launch(self) -> None:
        """Start slices until ``concurrency`` are asking (one alone until the density is known) and at most twice
        as many are not yet stored (what bounds the answers held)."""
        width = self.plan.concurrency if self.plan.carver.rate is not None else 1
        while self.todo and len(self.fetching) < width and len(self.active) < 2 * width:
            gap = max(self.todo, key=lambda g: (not g.whole, -g.lo if self.up else g.hi))
            self.todo.remove(gap)
            part = self.plan.carver.cut((gap.lo, gap.hi), from_bottom=self.up, whole=gap.whole)
            self.todo.extend(Gap(lo, hi, dense=gap.dense) for lo, hi in ((gap.lo, part[0]), (part[1], gap.hi))
                             if lo < hi)
            ticket = next(self.tickets)
            if gap.dense:
                self.from_dense.add(ticket)
            self.fetching.add(ticket)
            self.active[ticket] = asyncio.ensure_future(self.read(ticket, part))

    def learn(self, ticket: int, part: Span, chunk: Chunk, count: int) -> None:
        """What a slice's last answer says: a slice too dense goes back as gaps (less what it completed; refused
        whole, it is dense throughout); an empty one makes the stretch beyond it one slice (the records may end
        there), unless it was cut from a stretch known to be dense."""
        if chunk.denser is not None:
            self.plan.carver.denser(chunk.denser)
            if chunk.split is None:
                self.todo.append(Gap(*part, dense=True))
            self.todo.extend(Gap(lo, hi, whole) for lo, hi, whole in chunk.split or ())
            return
        self.plan.carver.learn(part, count)
        beyond = [g for g in self.todo if (g.lo >= part[1] if self.up else g.hi <= part[0])]
        if count == 0 and beyond and ticket not in self.from_dense:
            (min(beyond, key=lambda g: g.lo) if self.up else max(beyond, key=lambda g: g.hi)).whole = True

    def check(self, part: Span, chunk: Chunk) -> None:
        """An answer whose records lie mostly outside the bounds its slice sent (not the slice: an API may read
        them wider, see ``SlicePlan.covered``): the API ignores the filters."""
        checked = chunk.records or chunk.read
        if self.plan.place is not None and checked:
            check_places(self.plan.path, self.plan.reach(part), checked, self.plan.place)

    def settle(self, ticket: int, part: Span, chunk: Chunk) -> None:
        """A slice's last chunk is being handed over: what it completed joins ``done``."""
        del self.active[ticket]
        if chunk.denser is None:
            self.done = merge(self.done, part)
        elif chunk.finished is not None:
            self.done = merge(self.done, chunk.finished)


async def read_slices(plan: SlicePlan, done: list[Span], fetch: Fetch,
                      ) -> AsyncGenerator[tuple[Chunk, list[Span]], None]:
    """Every chunk of the gaps of ``plan.span`` not in ``done``, each with the complete slices once it is stored
    (level 3, the slices: it knows nothing of passes or state).

    One slice is read alone until the density is known (its answer sizes the others), then up to
    ``plan.concurrency`` at once; each hands its chunks over a queue as long as the concurrency, so a slow caller
    holds the readers back instead of letting answers pile up."""
    reading = _Reading(plan, done, fetch)
    try:
        reading.launch()
        while reading.active:
            ticket, part, item = await reading.handed.get()
            if isinstance(item, BaseException):
                raise item
            reading.check(part, item)
            if item.denser is not None or item.last:
                reading.settle(ticket, part, item)
            reading.launch()  # the next slices are asked before this chunk is stored, not after
            if item.records or item.last:
                yield item, reading.done
    finally:
        await cancel_all(list(reading.active.values()))


async def read_stream(
    stream: Stream[S], fetch: Fetch, state: S, max_record_bytes: int | None = None,
) -> AsyncGenerator[Page, None]:
    """Every page of ``stream`` from ``state`` on, each with the state that is true once the page is stored
    (level 2, the passes: each pass's slices come from :func:`read_slices`).

    A run that resumes passes an earlier (killed) run planned reads them to the end, then plans and reads its own
    incremental passes too: the resumed passes only see changes up to the moment they were planned, and a run
    must hold every change the API had when it started."""
    state = state.model_copy(deep=True)
    resumed = state.run is not None
    if state.run is None:
        state.run = _plan(stream, state, sweep=True)
    while state.run is not None:
        plan = stream.plan(state.run.current, state)
        plan.carver.rate = state.run.rate if state.run.rate is not None else plan.carver.rate
        done: list[Span] = [] if state.run.position else [(lo, hi) for lo, hi in state.run.done]
        chunks = read_slices(plan, done, fetch)
        async with contextlib.aclosing(chunks):
            async for chunk, done_now in chunks:
                run = state.run.model_copy(deep=True)
                _observe(stream, run, chunk.records)
                run.memo.update(chunk.memo)
                run.done, run.rate, run.position = done_now, plan.carver.rate, None
                state = state.model_copy(update={"run": run})
                _render(plan, chunk, max_record_bytes)
                yield Page(chunk.records, state.model_copy(deep=True), rendered=chunk.rendered)
        assert state.run is not None
        state = _finish_pass(stream, state, state.run)
        yield Page([], state.model_copy(deep=True), requests=0)
        if state.run is None and resumed:
            resumed = False
            state.run = _plan(stream, state, sweep=False)


def _render(plan: SlicePlan, chunk: Chunk, max_record_bytes: int | None) -> None:
    """Each record's text (stored as its ``raw``), and the checks that need it, before the page is stored."""
    chunk.rendered = [orjson.dumps(r) for r in chunk.records]
    if max_record_bytes is not None:
        check_sizes(plan.path, chunk.records, chunk.rendered, max_record_bytes)


def _plan(stream: Stream[S], state: S, sweep: bool) -> RunProgress:
    """The passes of a new run (and its slice of the rolling sweep, when asked and the stream has one)."""
    now = stream.now()
    passes = stream.passes(state)
    cut = stream.sweep.plan(state.sweep, state, now) if sweep and stream.sweep and stream.full_pass not in passes \
        else None
    return RunProgress(passes=[*passes, "sweep"] if cut else passes, started=now - stream.lookback,
                       end=stream.run_end(), planned=now, sweep=cut)


def _observe(stream: Stream[Any], run: RunProgress, records: list[Record]) -> None:
    """Fold a chunk's records into what the pass has seen: the latest cursor value, the earliest creation time, and
    the two highest ids of the records created before the second the run was planned in (in locals, set on the
    model once a chunk: a model attribute per record cost a fifth of it).

    Why only those ids: the slice rule stores every record that existed when the run started, not every record
    created while it reads (a deletion may shift a new one out of a page already read). Ids rise with creation, so
    every record with a lower id than one created before the run's second existed when the run started, and was
    stored; every record created since has a higher id, which the next run's ``since_id`` asks for."""
    cursor, record_id, created_of = stream.cursor, stream.record_id, stream.created
    seen_max, seen_max_id, next_id, oldest = run.seen_max, run.seen_max_id, run.seen_next_id, run.oldest
    moment = run.planned or run.started
    before = moment.replace(microsecond=0) if moment else None
    for record in records:
        seen_max = later(seen_max, cursor(record))
        created = created_of(record)
        if created is not None and (oldest is None or created < oldest):
            oldest = created
        if created is None or before is None or created >= before:
            continue
        rid = record_id(record)
        if rid is not None and (seen_max_id is None or rid > seen_max_id):
            seen_max_id, next_id = rid, seen_max_id
        elif rid is not None and rid != seen_max_id and (next_id is None or rid > next_id):
            next_id = rid
    run.seen_max, run.seen_max_id, run.seen_next_id, run.oldest = seen_max, seen_max_id, next_id, oldest


def _finish_pass(stream: Stream[S], state: S, run: RunProgress) -> S:
    """The state once the current pass is complete: the stream's own fold, then the sweep's; the next pass of the
    run, or no run in progress after the last one."""
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


