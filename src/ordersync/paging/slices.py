"""Slices of a pass and how they are cut: merged spans, the gaps between them, and the carver that sizes a slice.

Every pass covers one *span* ``[lo, hi)`` on its API's axis (seconds, days or milliseconds of creation or update
time, as whole numbers). The pass is read as slices of that span; the state keeps the slices that are complete as
merged spans (Airbyte's concurrent cursor keeps its completed slices the same way), so that a killed run reads
again exactly the gaps between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Span = tuple[int, int]
"""``[lo, hi)`` on a pass's axis."""


def merge(spans: Iterable[Span], new: Span) -> list[Span]:
    """``spans`` with ``new`` added, sorted, touching and overlapping spans joined."""
    merged: list[Span] = []
    for lo, hi in sorted([*spans, new]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def gaps(span: Span, covered: Iterable[Span]) -> list[Span]:
    """The parts of ``span`` that no span of ``covered`` holds, ascending."""
    result: list[Span] = []
    at, end = span
    for lo, hi in sorted(covered):
        if hi <= at or lo >= end:
            continue
        if lo > at:
            result.append((at, lo))
        at = max(at, hi)
    if at < end:
        result.append((at, end))
    return result


@dataclass
class Carver:
    """Cuts the next slice off the top (or the bottom) of a gap, sized to hold about ``target`` records at the
    density seen.

    Until an answer has shown the density, a slice is ``first`` long (None: the whole gap: an incremental pass
    usually fits in one answer, and a first run's first answer shows how dense the newest history is). The
    density follows each complete slice that held records; a slice too large for
    one answer says how dense it is at least (``denser``). Slices never cross a ``boundary`` and are never
    shorter than one unit of the axis.
    """

    target: int
    first: int | None = None
    largest: int | None = None
    boundaries: tuple[int, ...] = ()
    rate: float | None = None  # records per unit of the axis, as seen last

    FILL = 0.85  # a slice is sized for this share of a page: one that comes back full costs a request more

    @classmethod
    def for_pages(cls, page_size: int, **options: Any) -> Carver:
        """A carver for an API with pages: slices sized to fit in one page with room to spare."""
        return cls(target=max(1, int(page_size * cls.FILL)), **options)

    def cut(self, gap: Span, from_bottom: bool = False, whole: bool = False) -> Span:
        """The next slice of ``gap``: its newest stretch, or its oldest (``from_bottom``); as much of it as a slice
        may hold when it is to be read ``whole``."""
        lo, hi = gap
        length = hi - lo
        if whole or (self.rate is not None and self.rate <= 0):
            size = length
        elif self.rate is None:
            size = self.first or length
        else:
            size = int(self.target / self.rate)
        size = max(1, min(size, self.largest or length, length))
        if from_bottom:
            return lo, min(hi, lo + size, *(b for b in self.boundaries if b > lo))
        return max(lo, hi - size, *(b for b in self.boundaries if b < hi)), hi

    def learn(self, part: Span, count: int) -> None:
        """A complete slice held ``count`` records: half the weight to it, half to what was known."""
        seen = count / (part[1] - part[0])
        if self.rate is None:
            self.rate = seen
        elif count == 0:
            return  # an empty stretch says nothing of the density where records are (see read_slices)
        else:
            self.rate = (self.rate + seen) / 2

    def denser(self, rate: float) -> None:
        """A slice was too large for one answer: the density there is at least ``rate``, the latest word on it
        (a burst of records in one second must not shrink every slice after it)."""
        self.rate = rate
