"""What a stream's stored state tells an operator, typed: how far its data reaches, the creation day its rolling
sweep re-reads next, and how far an unfinished run got.

Each API's state class gives it (``describe(zone)`` on :class:`ordersync.model.StreamState`), because only the API
knows what its cursor means (a time of change or of creation, an instant or the vendor's zone-less local time).
``ordersync status``, its ``--json`` form and the dashboard word it (:mod:`ordersync.status`). This module imports
nothing of ordersync, so the model, the paging engine and the status module can all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

Reached = Literal["changes", "orders created"]
"""What a stream's reach counts: ``changes`` (every change the API stamped up to then is stored) or ``orders
created`` (an API with no cursor of changes: the newest order stored was created then)."""

PASS_WORDS = {
    "all": "reading everything",
    "new": "new records",
    "updated": "changed records",
    "modified": "changed orders",
    "lookback": "the look-back window",
    "windows": "windows of changes",
    "sweep": "the sweep of older days",
}
"""The passes of the four APIs in words (a pass not listed is shown by its name)."""


@dataclass(frozen=True)
class Reach:
    """How far a stream's data reaches: up to the instant ``until`` (aware), in the vendor's ``zone``."""

    until: datetime
    zone: str
    what: Reached = "changes"

    @property
    def vendor_time(self) -> datetime:
        """The instant as the vendor's clock reads it (with its offset)."""
        return self.until.astimezone(ZoneInfo(self.zone))

    @property
    def utc(self) -> datetime:
        return self.until.astimezone(UTC)


@dataclass(frozen=True)
class Unfinished:
    """A run not finished (still running, or stopped half way: the next run resumes it): the pass it is in
    (``passes[index]``) and how many stretches of that pass are stored."""

    started: datetime
    passes: tuple[str, ...]
    index: int
    stretches: int

    @property
    def current(self) -> str:
        return self.passes[self.index] if 0 <= self.index < len(self.passes) else "?"

    def words(self) -> str:
        """``unfinished run of 2026-12-06 13:00 UTC: pass 2 of 2 (changed records), 3 stretches stored``."""
        name = self.current
        what = PASS_WORDS.get(name, name)
        done = f"{self.stretches} stretch{'es' if self.stretches != 1 else ''} stored" if self.stretches else \
            "nothing of it stored yet"
        return (f"unfinished run of {self.started.astimezone(UTC):%Y-%m-%d %H:%M} UTC: pass {self.index + 1} of "
                f"{len(self.passes)} ({what}), {done}")


@dataclass(frozen=True)
class StateView:
    """Everything a stream's state says to an operator; ``note``: why the stored state cannot be used (the next
    run reads everything again)."""

    reach: Reach | None = None
    next_sweep_day: date | None = None
    unfinished: Unfinished | None = None
    note: str | None = None
