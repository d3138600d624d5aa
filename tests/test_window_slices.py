"""Date windows (e-guma's slices: one whole answer each) through ``read_slices``, against an API simulated in
memory: windows follow the density of the records, every record is handed over once, no window is asked twice,
and at most ``concurrency`` windows are in flight."""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from ordersync.paging import Answer, Carver, Chunk, Request, SlicePlan, Span, WholeAnswer, read_slices

BEGIN = datetime(2026, 1, 1)
FMT = "%Y-%m-%dT%H:%M:%S"


class Api:
    """Every record of a window in one answer (no pages), like e-guma; records are their own update times."""

    def __init__(self, moments: list[datetime], too_large_over: timedelta | None = None) -> None:
        self.moments = sorted(moments)
        self.too_large_over = too_large_over
        self.asked: list[tuple[datetime, datetime]] = []
        self.open = self.most = 0  # requests in flight now, and at most

    async def fetch(self, request: Request) -> Answer:
        lo, hi = request.params["after"], request.params["before"]
        self.asked.append((lo, hi))
        self.open += 1
        self.most = max(self.most, self.open)
        await asyncio.sleep(0)  # let the requests asked ahead be in flight together
        self.open -= 1
        if self.too_large_over is not None and hi - lo > self.too_large_over:
            return Answer([], too_large="GET /orders answered more than 1 MB")
        found = self.moments[bisect.bisect_left(self.moments, lo):bisect.bisect_left(self.moments, hi)]
        return Answer([{"id": n, "updated_at": m.strftime(FMT)} for n, m in enumerate(found)])


def at(seconds: int) -> datetime:
    return BEGIN + timedelta(seconds=seconds)


def windows(end: datetime, first: timedelta, threshold: int, concurrency: int,
            largest: timedelta = timedelta(days=366)) -> SlicePlan:
    """The plan e-guma's client builds (windows on whole seconds, sized for half the threshold)."""
    target = max(1, threshold // 2)
    reader = WholeAnswer("orders", lambda part: {"after": at(part[0]), "before": at(part[1])}, target=target,
                         part_size=target, too_slow_hint="raise timeout")
    carver = Carver(target=target, first=int(first.total_seconds()), largest=int(largest.total_seconds()))

    def place(record: dict[str, Any]) -> int:
        return int((datetime.strptime(record["updated_at"], FMT) - BEGIN).total_seconds())

    return SlicePlan((0, int((end - BEGIN).total_seconds())), reader, carver, concurrency=concurrency, place=place,
                     path="orders")


def read_all(api: Api, plan: SlicePlan, turns: int = 0) -> list[tuple[Chunk, list[Span]]]:
    """Every chunk handed over; the caller lets the event loop turn ``turns`` times on each (as while storing it)."""
    async def run() -> list[tuple[Chunk, list[Span]]]:
        chunks = []
        async for chunk, done in read_slices(plan, [], api.fetch):
            chunks.append((chunk, done))
            for _ in range(turns):
                await asyncio.sleep(0)
        return chunks

    return asyncio.run(run())


def stored_once(chunks: list[tuple[Chunk, list[Span]]], moments: list[datetime]) -> bool:
    stored = Counter(r["updated_at"] for chunk, _ in chunks for r in chunk.records)
    return len(stored) == len(moments) and set(stored.values()) == {1} and chunks[-1][1] == [(0, chunks[-1][1][0][1])]


def every(minutes: float, start: datetime, end: datetime) -> list[datetime]:
    out, moment = [], start
    while moment < end:
        out.append(moment)
        moment += timedelta(minutes=minutes)
    return out


# ten quiet days (a record every 2 hours), then ten busy ones (one every 2 minutes): 7,320 records
QUIET_THEN_BUSY = every(120, BEGIN, BEGIN + timedelta(days=10)) + \
    every(2, BEGIN + timedelta(days=10), BEGIN + timedelta(days=20))
END = BEGIN + timedelta(days=20)


def test_windows_follow_the_density_and_no_answer_is_read_twice() -> None:
    api = Api(QUIET_THEN_BUSY)
    chunks = read_all(api, windows(END, timedelta(days=1), threshold=100, concurrency=1))
    assert stored_once(chunks, QUIET_THEN_BUSY)
    # every window was asked once, and together they hold each record once: none was dropped and asked again
    assert len(api.asked) == len(set(api.asked))
    fetched = sum(len(api.moments[bisect.bisect_left(api.moments, lo):bisect.bisect_left(api.moments, hi)])
                  for lo, hi in api.asked)
    assert fetched == len(QUIET_THEN_BUSY)
    # about one request per 50 records (half the threshold) in both stretches, not thousands of tiny windows
    assert len(api.asked) <= len(QUIET_THEN_BUSY) / 50 * 1.25 + 6
    busy = [hi - lo for lo, hi in api.asked[1:] if lo >= BEGIN + timedelta(days=11)]  # after the first
    quiet = [hi - lo for lo, hi in api.asked if hi <= BEGIN + timedelta(days=9)]
    # read newest first: the windows grow as the quiet days show their density (the last is what remains)
    assert 2 <= len(quiet) <= 6 and all(a < b for a, b in pairwise(quiet[:-1]))
    assert busy and all(timedelta(minutes=60) <= span <= timedelta(minutes=140) for span in busy)  # ~100 minutes


def test_windows_are_read_concurrency_at_once_and_none_is_asked_twice() -> None:
    api = Api(QUIET_THEN_BUSY)
    chunks = read_all(api, windows(END, timedelta(days=1), threshold=100, concurrency=4))
    assert stored_once(chunks, QUIET_THEN_BUSY)
    assert len(api.asked) == len(set(api.asked))
    assert 1 < api.most <= 4  # several windows in flight, never more than the concurrency
    assert len(api.asked) <= len(QUIET_THEN_BUSY) / 50 * 1.25 + 6


def test_an_answer_too_large_in_bytes_is_read_again_in_smaller_windows() -> None:
    moments = every(60, BEGIN, BEGIN + timedelta(days=8))
    api = Api(moments, too_large_over=timedelta(days=2))
    chunks = read_all(api, windows(BEGIN + timedelta(days=8), timedelta(days=8), threshold=1000, concurrency=4))
    assert stored_once(chunks, moments)
    dropped = [(lo, hi) for lo, hi in api.asked if hi - lo > timedelta(days=2)]
    assert dropped  # the window was wider than the API accepts, and its answer was refused
    for lo, hi in dropped:  # ... and read again as smaller windows that cover it
        kept = sorted((a, b) for a, b in api.asked if lo <= a and b <= hi and b - a <= timedelta(days=2))
        assert kept[0][0] == lo and kept[-1][1] == hi and all(x[1] == y[0] for x, y in pairwise(kept))


class MovingApi(Api):
    """One record of every answer was changed while the answer was written: its ``updated_at`` is past the window."""

    async def fetch(self, request: Request) -> Answer:
        answer = await super().fetch(request)
        if answer.records:
            answer.records[0]["updated_at"] = (request.params["before"] + timedelta(hours=1)).strftime(FMT)
        return answer


def test_a_record_changed_while_its_window_was_answered_does_not_stop_the_pass() -> None:
    moments = every(1, BEGIN, BEGIN + timedelta(hours=5))
    chunks = read_all(MovingApi(moments), windows(BEGIN + timedelta(hours=5), timedelta(days=1), threshold=100,
                                                  concurrency=1))
    ids = Counter(r["id"] for chunk, _ in chunks for r in chunk.records)
    assert len(ids) == len(moments) and set(ids.values()) == {1}  # all 300 (one answer, handed in parts), once
    assert len([chunk for chunk, _ in chunks if chunk.records]) > 1


class Sized(Api):
    """Refuses an answer of more than 800 records, saying how many times too large it is (Content-Length)."""

    async def fetch(self, request: Request) -> Answer:
        lo, hi = request.params["after"], request.params["before"]
        found = self.moments[bisect.bisect_left(self.moments, lo):bisect.bisect_left(self.moments, hi)]
        if len(found) > 800 and hi - lo > timedelta(seconds=1):
            self.asked.append((lo, hi))
            return Answer([], too_large="GET /orders answered more than the limit", oversize=len(found) / 800)
        return await super().fetch(request)


def test_a_window_that_says_how_large_it_is_is_cut_once_not_halved_again_and_again() -> None:
    """An answer refused for its size that gave its length (Content-Length) is cut at once into windows of about
    an eighth of the limit; halving would ask the dense stretch again at every level."""
    api = Sized(QUIET_THEN_BUSY)
    chunks = read_all(api, windows(END, timedelta(days=20), threshold=100, concurrency=4))
    assert stored_once(chunks, QUIET_THEN_BUSY)
    refused = [(lo, hi) for lo, hi in api.asked
               if len(api.moments[bisect.bisect_left(api.moments, lo):bisect.bisect_left(api.moments, hi)]) > 800]
    assert len(refused) == 1  # the first, twenty-day window: cut into parts that each fit
    assert len(api.asked) == len(set(api.asked))


def test_a_window_refused_in_a_dense_stretch_after_quiet_days_is_cut_and_nothing_is_asked_twice() -> None:
    """Quiet days around a dense stretch: windows grow to ``largest`` over the quiet days, and the one that reaches
    the dense stretch is refused for its size while other windows are read; it is read again in parts, and no
    window is asked twice."""
    end = BEGIN + timedelta(days=40)
    moments = every(1, BEGIN + timedelta(days=20), BEGIN + timedelta(days=22))  # 2,880 records
    api = Sized(moments)
    chunks = read_all(api, windows(end, timedelta(days=1), threshold=100, concurrency=4,
                                   largest=timedelta(days=8)), turns=10)
    assert stored_once(chunks, moments)
    # a stretch read whole is still at most max_window_days (found by this test: 39-day windows, each refused)
    assert all(hi - lo <= timedelta(days=8) for lo, hi in api.asked)
    assert len(api.asked) == len(set(api.asked))  # no window asked twice
