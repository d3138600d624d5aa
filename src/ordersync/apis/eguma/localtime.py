"""e-guma's time axis: zone-less local wall-clock strings (``2019-06-04T23:15:14``), compared as text.

The vendor stores and compares Swiss local time without a zone, so the client builds its date windows on that
same axis (naive local datetimes), and the sandbox stamps records with it. This module holds the conversions
both sides need; the filter semantics themselves live separately in the client and in the sandbox.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FORMAT = "%Y-%m-%dT%H:%M:%S"
EXAMPLE = "2019-06-04T23:15:14"
PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def parse_local(value: str) -> datetime | None:
    """A documented filter value as a naive datetime, or None if it is not exactly ``2019-06-04T23:15:14``."""
    if not PATTERN.match(value):
        return None
    try:
        return datetime.strptime(value, FORMAT)
    except ValueError:
        return None


def local_text(moment: datetime, zone: ZoneInfo) -> str:
    """An instant as the vendor writes it: local wall-clock time of ``zone``, no zone."""
    return moment.astimezone(zone).strftime(FORMAT)


def _ambiguous(naive: datetime, zone: ZoneInfo) -> bool:
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset()


def safe_end(moment: datetime, zone: ZoneInfo) -> datetime:
    """The latest naive local time that no instant at or after ``moment`` can be stamped before.

    Local time runs backwards once a year (autumn: 02:00-03:00 happens twice in Zurich). While ``moment`` is in
    the first pass of that hour, a later instant can still be stamped with an earlier wall-clock time, so a
    cursor must not pass the start of the repeated hour until its second pass is over.
    """
    aware = moment.astimezone(zone)
    naive = aware.replace(tzinfo=None)
    if aware.fold == 1 or not _ambiguous(naive, zone):
        return naive
    first_ambiguous = naive.replace(second=0)
    while _ambiguous(first_ambiguous - timedelta(minutes=1), zone):
        first_ambiguous -= timedelta(minutes=1)
    if not _ambiguous(first_ambiguous, zone):  # pragma: no cover - transitions fall on whole minutes
        return naive
    return min(naive, first_ambiguous)


def utc_now() -> datetime:
    """The current instant; tests pin it by patching this function."""
    return datetime.now(UTC).replace(microsecond=0)
