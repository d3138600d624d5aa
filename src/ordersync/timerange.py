"""What a person types for a time range and a time zone (``--since 2026-09-01 --until 2026-10-01 --tz
Europe/Oslo``), read into exact UTC bounds, or refused with one line that shows how to write it.

A range is half-open: ``since`` is included, ``until`` is not, so that consecutive ranges (September, then
October) never count an order twice and never miss one. A date is midnight at its start in the zone given
(``--tz``, else UTC); a date and time without an offset is read in that zone too; one with an offset (``Z``,
``+02:00``) is that moment wherever the reader is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EXAMPLES = "write a date such as 2026-09-01, or a date and time such as 2026-09-01T08:00 or 2026-09-01T08:00+02:00"


@dataclass(frozen=True)
class TimeRange:
    """``since <= t < until`` in UTC, whole seconds; either end may be open (None)."""

    since: datetime | None = None
    until: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name`` (``Europe/Oslo``, ``UTC``), None for none; ``ValueError`` in our words otherwise."""
    if name is None:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed ("../x", ""), or a folder's name
        raise ValueError(f"--tz '{name}' is not a time zone; write an IANA name such as Europe/Oslo, "
                         "America/New_York or UTC") from None


def time_range(since: str | None, until: str | None, local: tzinfo | None = None) -> TimeRange:
    """``--since`` and ``--until`` as a :class:`TimeRange`; dates and plain times are read in ``local`` (UTC
    when None). ``ValueError`` with the flag's name when one is not a time or the range is empty."""
    where = local or UTC
    start = _moment("--since", since, where)
    end = _moment("--until", until, where)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"--since {since} is not before --until {until}: the range holds no time "
                         "(--since is included, --until is not)")
    return TimeRange(start, end)


def _moment(flag: str, text: str | None, where: tzinfo) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{flag} '{text}' is not a date or a time; {_EXAMPLES}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=where)
    try:
        moment = value.astimezone(UTC)
        if moment.microsecond:  # stored times are whole seconds: the first whole second at or after it
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        raise ValueError(f"{flag} '{text}' is out of range: in UTC it falls before the year 1 or after 9999") from None
    return moment
