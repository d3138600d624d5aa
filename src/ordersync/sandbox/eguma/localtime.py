"""How the e-guma sandbox writes and reads time: Swiss wall-clock text without a zone (``2019-06-04T23:15:14``).

The vendor stamps records with local time and compares filter values with those stamps as text, so the sandbox
does the same. The client has its own reading of this format (``ordersync.apis.eguma.localtime``); the two are
written apart on purpose, so that a misreading on one side is caught by tests against the other.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

ZURICH = ZoneInfo("Europe/Zurich")
STAMP = "%Y-%m-%dT%H:%M:%S"
EXAMPLE = "2019-06-04T23:15:14"  # the documentation's own example of a filter value
_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def is_wall_clock(value: str) -> bool:
    """Whether a filter value is a real date and time written exactly like the example (anything else is a 400)."""
    if not _SHAPE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, STAMP)
    except ValueError:
        return False
    return True


def wall_clock(moment: datetime, zone: ZoneInfo = ZURICH) -> str:
    """An instant as the shop's records show it: the wall-clock time in ``zone``, with no zone written."""
    return moment.astimezone(zone).strftime(STAMP)
