"""How one slice is read: numbered pages, keyset pages, or one whole answer. Each asks a page only once the one
before it is answered (the slice rule, see :mod:`ordersync.paging.engine`)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ordersync.errors import ApiError
from ordersync.model import Record
from ordersync.paging.guard import Identity, LoopGuard, by_text
from ordersync.paging.slices import Span
from ordersync.paging.stream import Answer, Chunk, Fetch, Request

READINGS = 4  # readings of one multi-page slice before giving up on a consistent one


def _too_dense(part: Span, answer: Answer, place: Callable[[Record], int | None] | None, newest_first: bool,
               ) -> Chunk:
    """A full first answer: how dense the slice is, and the stretch beyond the records it shows
    (above the newest when they were the newest, below the oldest when they were the oldest), read whole."""
    places = [p for p in map(place, answer.records) if p is not None and part[0] <= p < part[1]] if place else []
    sparse = None
    if places:
        sparse = (max(places) + 1, part[1]) if newest_first else (part[0], min(places))
    if sparse is not None and sparse[0] >= sparse[1]:
        sparse = None
    return Chunk([], denser=_density(part, answer, place), sparse=sparse)  # its records are read again


def _density(part: Span, answer: Answer, place: Callable[[Record], int | None] | None) -> float:
    """Records per unit at least, in a slice whose first answer was full: from the announced total, else from the
    stretch its records span (the API sorts them, so they are the newest or the oldest), else twice the answer's."""
    length = part[1] - part[0]
    if answer.total_items:
        return answer.total_items / length
    places = [p for p in map(place, answer.records) if p is not None] if place else []
    inside = [p for p in places if part[0] <= p < part[1]]
    if inside:
        return len(answer.records) / max(1, max(inside) - min(inside) + 1)
    return 2 * len(answer.records) / length


@dataclass
class NumberedPages:
    """Pages 1, 2, ... of one slice (Frontcore, Firespring). A first answer that is full, in a slice longer than
    one unit, hands its records over and asks for smaller slices. A slice of one unit is read page after page; then
    the reading is checked: against the announced total (unchanged, every page but the last full, as many records
    as announced), or, with no total, by a second reading that must bring nothing the first did not. A reading
    that fails its check is read again."""

    path: str
    params: Callable[[Span], dict[str, Any]]  # the slice's query, without the page
    size: int  # the page size asked
    place: Callable[[Record], int | None] | None = None
    identity: Identity = by_text
    newest_first: bool = False  # the API answers the newest records first

    async def __call__(self, part: Span, fetch: Fetch) -> AsyncIterator[Chunk]:
        before: set[int] | None = None  # what the reading before held, when it must be confirmed
        for _reading in range(READINGS):
            guard, pages, expected, steady = LoopGuard(self.path, self.identity), 0, None, True
            seen: set[int] = set()
            page = 1
            while True:
                answer = await fetch(Request(self.path, {**self.params(part), "page": page}))
                records, pages = answer.records, pages + 1
                guard.check(f"page {page}", records)
                seen.update(hash(self.identity(r)) for r in records)
                more = page < answer.total_pages if answer.total_pages is not None else len(records) >= self.size
                if page == 1 and more and part[1] - part[0] > 1:
                    yield _too_dense(part, answer, self.place, self.newest_first)
                    return
                if answer.total_items is not None:
                    expected = answer.total_items if expected is None else expected
                    steady = steady and answer.total_items == expected and (not more or len(records) >= self.size)
                if more:
                    yield Chunk(records)
                    page += 1
                    continue
                if expected is not None:
                    complete = steady and len(seen) >= expected
                else:
                    complete = pages == 1 or (before is not None and seen <= before)
                    before = seen
                yield Chunk(records, last=complete)
                break
            if complete:
                return
        raise ApiError(f"{self.path} changed while a stretch of it was read, {READINGS} times in a row; run the sync "
                       "again later (what was read is stored)")


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


@dataclass
class KeysetPages:
    """Pages of one slice by keyset (Prio): sorted by creation time, each request starts at the creation time of
    the last record read and drops the records already read at that instant, so a record entering or leaving the
    result cannot push an unread one past the reader. A page whose records all share one instant is followed by
    the next page number of the same query. The slice's first request may be conditional (304: nothing changed)."""

    path: str
    params: Callable[[Span, str | None, int], dict[str, Any]]  # the query from a creation time, page number
    headers: Callable[[Span], dict[str, str]]  # the first request's (conditional) headers
    id_of: Callable[[Record], str]
    created: Callable[[Record], datetime | None]
    memo: Callable[[Span, str | None], dict[str, Any]]  # what the slice's first answer's Last-Modified leaves
    size: int
    place: Callable[[Record], int | None] | None = None
    identity: Identity = by_text

    async def __call__(self, part: Span, fetch: Fetch) -> AsyncIterator[Chunk]:
        guard = LoopGuard(self.path, self.identity)
        since: datetime | None = None
        skip: set[str] = set()
        page, first = 1, True
        while True:
            headers = self.headers(part) if first else {}
            query = self.params(part, since.isoformat() if since else None, page)
            answer = await fetch(Request(self.path, query, headers))
            memo = self.memo(part, answer.last_modified) if first else {}
            if answer.not_modified:
                yield Chunk([], last=True, memo=memo)
                return
            answered = answer.records
            guard.check(f"from {since.isoformat() if since else 'the start'}, page {page}", answered)
            size = answer.page_size or self.size
            more = len(answered) >= size and not (answer.total_items is not None and answer.total_items <= size)
            if first and more and answer.total_items and part[1] - part[0] > 1:
                chunk = _too_dense(part, answer, self.place, newest_first=False)
                chunk.memo = memo
                yield chunk
                return
            records = [r for r in answered if self.id_of(r) not in skip]
            if not more:
                yield Chunk(records, last=True, memo=memo)
                return
            yield Chunk(records, memo=memo)
            first = False
            times = [self.created(r) for r in answered]
            last = times[-1]
            if last is None or times[0] == last or (since is not None and last <= since):
                page += 1  # the whole page shares one instant (or has none): the next page of the same query
                skip.update(self.id_of(r) for r in answered)
                continue
            since, page = last, 1
            skip = {self.id_of(r) for r, t in zip(answered, times, strict=True) if t == last}
