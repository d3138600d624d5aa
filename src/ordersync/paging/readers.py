"""How one slice is read: numbered pages, or one whole answer. Each asks a page only once the one before it is
answered (the slice rule, see :mod:`ordersync.paging.engine`)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ordersync.errors import ApiError
from ordersync.model import Record
from ordersync.paging.guard import Identity, LoopGuard, RepeatedAnswer, by_text
from ordersync.paging.slices import Span
from ordersync.paging.stream import Answer, Chunk, Fetch, Request

READINGS = 4  # readings of one multi-page slice before giving up on a consistent one


def _too_dense(part: Span, answer: Answer, place: Callable[[Record], int | None] | None, newest_first: bool,
               ascending: bool = False) -> Chunk:
    """A full first answer, read as a map of its slice: its records are the oldest (or the newest) of the slice,
    so the stretch before them (after them) is empty, the stretch they span holds them, and the rest holds the
    others (as many as the announced total leaves, if there is one). Each stretch is read again on its own.

    Sorted ``ascending`` by their place (the API's own order, new records only at the end), the answer holds
    every record of the stretch before its last record's place: those are handed over and that stretch is
    complete; only the rest is read again."""
    length, count = part[1] - part[0], len(answer.records)
    places = [p for p in map(place, answer.records) if p is not None and part[0] <= p < part[1]] if place else []
    if not places:
        return Chunk([], denser=answer.total_items / length if answer.total_items else 2 * count / length,
                     read=answer.records)
    covered = (min(places), max(places) + 1)
    if ascending and covered[1] - 1 > part[0]:  # every record before the last one's place is in this answer
        last = covered[1] - 1
        kept = [r for r in answer.records if (p := place(r)) is not None and p < last] if place else []
        left = (answer.total_items or 0) - len(kept)
        rate = left / (part[1] - last) if left > 0 else len(kept) / (last - part[0])
        return Chunk(kept, denser=rate, split=[(last, part[1], False)], finished=(part[0], last))
    empty, rest = ((covered[1], part[1]), (part[0], covered[0])) if newest_first else \
        ((part[0], covered[0]), (covered[1], part[1]))
    left = (answer.total_items or 0) - count
    rate = left / (rest[1] - rest[0]) if left > 0 and rest[1] > rest[0] else count / (covered[1] - covered[0])
    split = [(empty, True), (covered, False), (rest, False)]
    return Chunk([], denser=rate, split=[(lo, hi, whole) for (lo, hi), whole in split if lo < hi],
                 read=answer.records)


@dataclass
class NumberedPages:
    """Pages 1, 2, ... of one slice (Frontcore, Firespring, Prio). A first answer that is full, in a slice longer
    than one unit, asks for smaller slices instead: so only a slice of one unit (a second, a day, a millisecond)
    is ever read over several pages, and it is read so that a record deleted meanwhile cannot shift another past
    the reader:

    * where new records only ever join the end of the order (``appends_only``: by creation time, ascending) and
      the API announces its pages, the pages after the first are read from the last one down, then the first
      again: a deletion moves records towards the pages still to be read, never away from them;
    * otherwise the slice is read again until a reading brings no record older than the newest the reading
      before it held that it did not hold (``rank``: new records rank above every older one).

    The first request may be conditional (``headers``, Prio's ``If-Modified-Since``): 304 means the slice is
    unchanged, and ``memo`` keeps what its first answer says for the pass's end (the ``Last-Modified``).
    """

    path: str
    params: Callable[[Span], dict[str, Any]]  # the slice's query, without the page
    size: int  # the page size asked
    place: Callable[[Record], int | None] | None = None
    identity: Identity = by_text
    newest_first: bool = False  # the API answers the newest records first
    appends_only: bool = False  # a new record joins the end of the order, never the middle or the head
    rank: Callable[[Record], int | None] | None = None  # a record's place among newer and older ones (its id)
    headers: Callable[[Span], dict[str, str]] | None = None  # the first request's (conditional) headers
    memo: Callable[[Span, str | None], dict[str, Any]] | None = None  # what the first answer's Last-Modified leaves
    covered: Callable[[Span], Span] | None = None  # the span a part's query may be answered from (SlicePlan's)

    async def __call__(self, part: Span, fetch: Fetch) -> AsyncIterator[Chunk]:
        guard = LoopGuard(self.path, self.identity)
        first = await self._page(part, 1, fetch, guard, self.headers(part) if self.headers else {})
        memo = self.memo(part, first.last_modified) if self.memo else {}
        if first.not_modified or not self._more(first, 1) or self._passed(part, first):
            yield Chunk(first.records, last=True, memo=memo)
        elif part[1] - part[0] > 1 and not self._beyond(part, first):
            yield _too_dense(part, first, self.place, self.newest_first, ascending=self.appends_only)
        elif self.appends_only and first.total_pages is not None:
            yield Chunk(first.records, memo=memo)
            for page in range(first.total_pages, 1, -1):
                yield Chunk((await self._page(part, page, fetch, guard)).records)
            yield Chunk((await self._page(part, 1, fetch, LoopGuard(self.path, self.identity))).records, last=True)
        else:
            yield Chunk([], memo=memo)
            async for chunk in self._confirmed(part, fetch, first, guard):
                yield chunk

    async def _confirmed(self, part: Span, fetch: Fetch, first: Answer, guard: LoopGuard) -> AsyncIterator[Chunk]:
        """Readings from the first page to the first short one, until one brings nothing older than the newest of
        the reading before that that reading did not hold (a new record may enter at the head meanwhile). A page
        that repeats the one before it ends its reading early when the list moved by a whole page (see
        :meth:`_restart`): the next reading is compared with what that one held."""
        rank = self.rank or (lambda r: hash(self.identity(r)))
        before: set[int | None] | None = None
        for _reading in range(READINGS):
            seen: set[int | None] = set()
            page, answer, moved = 1, first, False
            while True:
                seen.update(map(rank, answer.records))
                if not self._more(answer, page):
                    break
                yield Chunk(answer.records)
                page += 1
                try:
                    answer = await self._page(part, page, fetch, guard)
                except RepeatedAnswer as repeated:
                    first, guard = await self._restart(part, fetch, repeated)
                    moved = True
                    break
            if moved:
                before = seen
                continue
            newest = max((r for r in before or () if r is not None), default=None)
            complete = before is not None and all(r in before or (newest is not None and r is not None and r > newest)
                                                  for r in seen)
            yield Chunk(answer.records, last=complete)
            if complete:
                return
            before, guard = seen, LoopGuard(self.path, self.identity)
            first = await self._page(part, 1, fetch, guard)
        raise ApiError(f"{self.path} changed while a stretch of it was read, {READINGS} times in a row; run the sync "
                       "again later (what was read is stored)")

    async def _restart(self, part: Span, fetch: Fetch, repeated: RepeatedAnswer) -> tuple[Answer, LoopGuard]:
        """A page that repeats the one before it: ``size`` records new at the head pushed the page just read into
        the next one, if page 1, asked again, holds other records (then it starts the next reading); else the API
        ignores the page asked for, and the reading stops."""
        guard = LoopGuard(self.path, self.identity)
        again = await self._page(part, 1, fetch, guard)
        if [hash(self.identity(r)) for r in again.records] == repeated.digests:
            raise repeated
        return again, guard

    async def _page(self, part: Span, page: int, fetch: Fetch, guard: LoopGuard,
                    headers: dict[str, str] | None = None) -> Answer:
        answer = await fetch(Request(self.path, {**self.params(part), "page": page}, headers or {}))
        guard.check(f"page {page}", answer.records)
        return answer

    def _passed(self, part: Span, answer: Answer) -> bool:
        """A full answer whose last record lies past the part, inside the wider span its bounds cover (below it,
        newest first): it holds every record of the part, which is complete (the others are the API's right
        answer to the bounds sent, stored too)."""
        if self.covered is None or self.place is None or not answer.records:
            return False
        lo, hi = self.covered(part)
        last = self.place(answer.records[-1])
        return last is not None and (lo <= last < part[0] if self.newest_first else part[1] <= last < hi)

    def _beyond(self, part: Span, answer: Answer) -> bool:
        """A full answer holding none of the part's records, only records of the wider span its bounds cover (the
        autumn hour, see ``covered``): a smaller slice there would be answered the same records first, however
        small, so the part is paged instead of cut (down to seconds that would each be paged)."""
        if self.covered is None or self.place is None:
            return False
        lo, hi = self.covered(part)
        places = [p for p in map(self.place, answer.records) if p is not None]
        return bool(places) and all(lo <= p < hi and not part[0] <= p < part[1] for p in places)

    def _more(self, answer: Answer, page: int) -> bool:
        return page < answer.total_pages if answer.total_pages is not None else len(answer.records) >= self.size


@dataclass
class WholeAnswer:
    """One answer per slice, no pages (e-guma): every record of the slice at once. An answer too slow or too large
    asks for smaller slices; a large one is handed over in parts of ``part_size`` records."""

    path: str
    params: Callable[[Span], dict[str, Any]]
    target: int  # the records a slice is sized for
    part_size: int
    too_slow_hint: str

    async def __call__(self, part: Span, fetch: Fetch) -> AsyncIterator[Chunk]:
        answer = await fetch(Request(self.path, self.params(part)))
        length = part[1] - part[0]
        if answer.too_slow is not None or answer.too_large is not None:
            if length <= 1 and answer.too_large is not None:
                raise ApiError(f"{answer.too_large} (even for one second of orders)")
            if length <= 1:
                raise ApiError(f"{answer.too_slow} took too long even for one second of orders; {self.too_slow_hint}")
            parts = math.ceil(8 * answer.oversize) if answer.oversize and answer.oversize > 2 else 2
            yield Chunk([], denser=parts * self.target / length)
            return
        records = answer.records
        for start in range(0, max(1, len(records)), self.part_size):
            yield Chunk(records[start:start + self.part_size], last=start + self.part_size >= len(records))
