"""The rolling sweep: older creation days read again, one slice per incremental run, so that a change the API's
cursor does not show is seen within a period."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from ordersync.paging.stream import RunProgress


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
