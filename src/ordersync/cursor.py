"""The one rule for time cursors, shared by every API with an "updated since" filter.

After a pass that asked for everything changed since ``previous``, the next pass may start at the latest
change it saw, but never later than the moment the pass started (minus a look-back for clock skew): a row
changed while the pass was paging may have been read before its change, and must be read again next time.
Re-reading a little is free (rows are upserted); skipping is not.
"""

from __future__ import annotations

from datetime import datetime


def next_cursor(previous: datetime | None, seen_max: datetime | None, pass_started: datetime) -> datetime | None:
    """The cursor to store once a pass has completed; ``pass_started`` already has the look-back subtracted."""
    candidate = min(seen_max, pass_started) if seen_max else previous
    if previous and (candidate is None or candidate < previous):
        return previous
    return candidate


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def as_text(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def from_text(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
