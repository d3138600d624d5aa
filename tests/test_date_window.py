"""Date windows (e-guma's paging) through the one paging loop, against an API simulated in memory: windows follow
the density of the records, no complete answer is read twice, and read-ahead asks only windows that are used."""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from ordersync.paging import Answer, DateWindow, Request, WindowAt, paginate

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


def windows(end: datetime, first: timedelta, threshold: int, read_ahead: int) -> DateWindow:
    return DateWindow("orders", lambda after, before: {"after": after, "before": before}, begin=BEGIN, end=end,
                      first_seconds=int(first.total_seconds()), largest=timedelta(days=366),
                      split_threshold=threshold, too_slow_hint="raise timeout",
                      moment=lambda r: datetime.strptime(r["updated_at"], FMT), read_ahead=read_ahead)


def read_all(api: Api, paginator: DateWindow, turns: int = 0) -> list[tuple[WindowAt, list[dict[str, Any]] | None]]:
    """Every step; the caller lets the event loop turn ``turns`` times on each page (as while storing it)."""
    async def run() -> list[tuple[WindowAt, list[dict[str, Any]] | None]]:
        steps = []
        async for at, step in paginate(api.fetch, paginator, paginator.start(None)):
            steps.append((at, step.records))
            for _ in range(turns):
                await asyncio.sleep(0)
        return steps

    return asyncio.run(run())


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
    steps = read_all(api, windows(END, timedelta(days=1), threshold=100, read_ahead=1))
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == len(QUIET_THEN_BUSY) and set(stored.values()) == {1}
    # every window was asked once: no complete answer was dropped and asked again in halves
    assert len(api.asked) == len(set(api.asked)) and all(a[1] == b[0] for a, b in pairwise(api.asked))
    fetched = sum(len(api.moments[bisect.bisect_left(api.moments, lo):bisect.bisect_left(api.moments, hi)])
                  for lo, hi in api.asked)
    assert fetched == len(QUIET_THEN_BUSY)
    # about one request per 50 records (half the threshold) in both stretches, not thousands of tiny windows
    assert len(api.asked) <= len(QUIET_THEN_BUSY) / 50 * 1.25 + 6
    busy = [hi - lo for lo, hi in api.asked if lo >= BEGIN + timedelta(days=11)]
    quiet = [hi - lo for lo, hi in api.asked if hi <= BEGIN + timedelta(days=10)]
    assert len(quiet) >= 2 and all(span > timedelta(days=3) for span in quiet[1:])  # 50 records: ~4 days
    assert busy and all(timedelta(minutes=60) <= span <= timedelta(minutes=140) for span in busy)  # ~100 minutes


def test_read_ahead_asks_only_windows_that_are_used() -> None:
    api = Api(QUIET_THEN_BUSY)
    steps = read_all(api, windows(END, timedelta(days=1), threshold=100, read_ahead=4))
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == len(QUIET_THEN_BUSY) and set(stored.values()) == {1}
    # the windows asked ahead are the windows the steps reach: none asked twice, none left unused
    used = {(at.after, min(at.after + timedelta(seconds=at.seconds), END)) for at, _ in steps}
    assert len(api.asked) == len(set(api.asked)) and set(api.asked) <= used
    assert api.most > 1  # read ahead really happened
    assert len(api.asked) <= len(QUIET_THEN_BUSY) / 50 * 1.25 + 6


def test_an_answer_too_large_in_bytes_is_split_and_the_windows_asked_ahead_are_kept() -> None:
    api = Api(every(60, BEGIN, BEGIN + timedelta(days=8)), too_large_over=timedelta(days=2))
    steps = read_all(api, windows(BEGIN + timedelta(days=8), timedelta(days=1), threshold=1000, read_ahead=4))
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == 8 * 24 and set(stored.values()) == {1}
    dropped = [(lo, hi) for lo, hi in api.asked if hi - lo > timedelta(days=2)]
    assert dropped  # the windows widened past what the API accepts, and those answers were dropped
    for lo, hi in dropped:  # ... and split: both halves asked, nothing else in their place
        middle = lo + (hi - lo) / 2
        assert (lo, middle) in api.asked and (middle, hi) in api.asked
    kept = [(at.after, at.after + timedelta(seconds=at.seconds)) for at, records in steps if records is not None]
    assert all(a[1] == b[0] for a, b in pairwise(kept))  # the windows stored are contiguous


class MovingApi(Api):
    """One record of every answer was changed while the answer was written: its ``updated_at`` is past the window."""

    async def fetch(self, request: Request) -> Answer:
        answer = await super().fetch(request)
        if answer.records:
            answer.records[0]["updated_at"] = (request.params["before"] + timedelta(hours=1)).strftime(FMT)
        return answer


def test_a_record_changed_while_its_window_was_answered_does_not_stop_the_pass() -> None:
    moments = every(1, BEGIN, BEGIN + timedelta(hours=5))
    steps = read_all(MovingApi(moments), windows(BEGIN + timedelta(hours=5), timedelta(days=1), threshold=100,
                                                 read_ahead=1))
    ids = Counter(r["id"] for _, records in steps for r in records or [])
    assert len(ids) == len(moments) and set(ids.values()) == {1}  # all 300 (one answer, stored in parts), once
    assert len([records for _, records in steps if records]) > 1


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
    an eighth of the limit, read ahead together; halving would ask the dense stretch again at every level."""

    api = Sized(QUIET_THEN_BUSY)
    steps = read_all(api, windows(END, timedelta(days=20), threshold=100, read_ahead=4))
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == len(QUIET_THEN_BUSY) and set(stored.values()) == {1}
    refused = [at for at, records in steps if records is None]
    assert len(refused) == 1  # the first, twenty-day window: cut into parts that each fit
    kept = [at.after for at, records in steps if records is not None]
    assert kept[0] == BEGIN and all(a < b for a, b in pairwise(kept))  # in order, each window once


def test_the_windows_asked_ahead_of_a_refused_one_are_not_asked_again_after_its_parts() -> None:
    """The first window is refused while the three after it are already asked; its parts take their places in
    the read-ahead, and when the steps reach those three windows their answers are used, not asked again."""
    end = BEGIN + timedelta(days=80)
    api = Sized(every(20, BEGIN, BEGIN + timedelta(days=20)) + every(600, BEGIN + timedelta(days=20), end))
    steps = read_all(api, windows(end, timedelta(days=20), threshold=100, read_ahead=4), turns=10)
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == len(api.moments) and set(stored.values()) == {1}
    assert api.asked[:4] == [(BEGIN + timedelta(days=20 * n), BEGIN + timedelta(days=20 * (n + 1))) for n in range(4)]
    assert len(api.asked) == len(set(api.asked))  # no window asked twice


def test_a_window_refused_while_the_ones_before_it_are_read_is_cut_at_once_and_nothing_is_asked_twice() -> None:
    """Quiet days, then a dense stretch: the windows planned over the quiet days grow to ``largest`` and the one
    that reaches the dense stretch is refused for its size while the windows before it are still being read. Its
    parts are asked ahead at once (it is never a step of its own, which would cost a round trip), and the window
    already asked after it, dropped while the parts are read, is used when the steps reach it, not asked again."""

    end = BEGIN + timedelta(days=40)
    api = Sized(every(1, BEGIN + timedelta(days=20), BEGIN + timedelta(days=22)))  # 2,880 records
    paginator = windows(end, timedelta(days=1), threshold=100, read_ahead=4)
    paginator.largest = timedelta(days=8)
    steps = read_all(api, paginator, turns=10)  # the answers asked ahead arrive while the caller stores a page
    stored = Counter(r["updated_at"] for _, records in steps for r in records or [])
    assert len(stored) == len(api.moments) and set(stored.values()) == {1}
    assert any(hi - lo == timedelta(days=8) and lo <= BEGIN + timedelta(days=20) < hi for lo, hi in api.asked)
    assert [at for at, records in steps if records is None] == []  # the refused window was cut ahead of its turn
    assert len(api.asked) == len(set(api.asked))  # no window asked twice
    kept = [at.after for at, _ in steps]
    assert kept[0] == BEGIN and all(a < b for a, b in pairwise(kept))
