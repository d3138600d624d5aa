"""The checks every answer passes before its records are stored: a pass that never ends, a record too large, an
API that ignores the filters."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from ordersync.errors import ApiError
from ordersync.model import Record


class SeenRecords:
    """The digests of the records a slice has read, in about 8 bytes each. A set of Python ints takes about 60 per
    digest, and a one-day slice of a busy shop can hold many pages. The latest digests are a set; every ``RUN`` of
    them becomes a sorted array, searched by bisection. Nothing is forgotten: a server that starts over after a
    long list is still caught."""

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


Identity = Callable[[Record], object]
"""What makes two answers' records the same record: its key and its cursor value, never its text (a server that
stamps each answer with the time it was made would make every text new)."""


def by_text(record: Record) -> object:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class RepeatedAnswer(ApiError):
    """An answer whose records are those of the answer before it (``digests``: theirs, as the guard compares
    them): a server ignoring its paging parameters, or a list that moved by exactly a page meanwhile."""

    def __init__(self, message: str, digests: list[int]) -> None:
        super().__init__(message)
        self.digests = digests


@dataclass
class LoopGuard:
    """Stops the reading of a slice whose pages never end: an answer whose records are those of the answer before
    it, or ``patience`` answers in a row that bring no record this reading has not seen (a server ignoring its
    paging parameters). One guard per reading of a slice: reading a slice again to check it starts afresh."""

    path: str
    identity: Identity = by_text
    patience: int = 5
    previous: list[int] | None = None
    seen: SeenRecords = field(default_factory=SeenRecords)
    idle: int = 0

    def check(self, where: str, records: list[Record]) -> int:
        """Raise when the reading loops; else the number of records not seen before in this reading."""
        digests = [hash(self.identity(r)) for r in records]
        if digests and digests == self.previous:
            raise RepeatedAnswer(f"{self.path} ({where}) answered the same records as the request before it: the API "
                                 "seems to ignore the paging parameters; stopped (the pages before are stored)",
                                 digests)
        self.previous = digests
        fresh = sum(digest not in self.seen for digest in digests)
        self.seen.update(digests)
        self.idle = self.idle + 1 if digests and not fresh else 0
        if self.idle >= self.patience:
            raise ApiError(f"{self.path} ({where}): {self.patience} answers in a row brought nothing new: the API "
                           "seems to ignore the paging parameters; stopped (the pages before are stored)")
        return fresh


def check_sizes(path: str, records: list[Record], rendered: list[bytes], limit: int) -> None:
    """Refuse a record larger than ``limit`` (its ``raw`` would be stored whole)."""
    for record, text in zip(records, rendered, strict=True):
        if len(text) > limit:
            ident = next((record[k] for k in ("id", "order_reference", "order_id") if k in record), None)
            which = f"id {ident!r}" if isinstance(ident, str | int) else "without an id"
            raise ApiError(f"{path} answered a record ({which}) of {len(text):,} bytes, more than max_record_mb = "
                           f"{limit / (1024 * 1024):.3g}; its page was not stored. Raise max_record_mb in the "
                           "source's section if such records are real")


def check_places(path: str, part: tuple[int, int], records: list[Record],
                 place: Callable[[Record], int | None]) -> None:
    """Stop when most records of an answer lie outside the slice asked for: a server that ignores the filters
    would answer the same records to every slice. A few outside are records changed while the answer was made."""
    places = [place(r) for r in records]
    outside = [p for p in places if p is not None and not part[0] <= p < part[1]]
    if len(outside) * 2 > len(records):
        raise ApiError(f"{path} answered records outside the range asked for: the API seems to ignore the date "
                       "filters; stopped (the pages before are stored)")
