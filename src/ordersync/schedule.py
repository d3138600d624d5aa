"""When to sync: intervals ("30s", "5m", "1h") for ``sync --every`` and the ``schedule`` source setting, which
also takes a cron expression ("*/15 * * * *"). Validated when the configuration is read, so that a typo is a
clear error before any orchestrator sees it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names) of the five cron fields
_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minute", 0, 59, []), ("hour", 0, 23, []), ("day of month", 1, 31, []), ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS))
_HELP = "write an interval such as 15m, 1h, 1d or a cron expression such as \"*/15 * * * *\""


MAX_INTERVAL = 366 * 86_400


def interval_seconds(text: str) -> int:
    """Seconds of an interval such as ``30s``, ``5m``, ``2h`` or ``1d``."""
    match = _INTERVAL.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"'{text}' is not an interval; write a number and a unit, such as 30s, 5m, 1h or 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_INTERVAL:  # a slip (and past what a clock can add): a watch round at least once a year
        raise ValueError(f"'{text}' is longer than a year; write at most 366d")
    return seconds


def is_interval(text: str) -> bool:
    return _INTERVAL.match(text) is not None


def cron(text: str) -> str:
    """The cron expression of a ``schedule`` setting: an interval becomes the cron that starts at that rate."""
    text = text.strip()
    if text.lower() in _MACROS:
        return _MACROS[text.lower()]
    if not is_interval(text):
        _check_cron(text)
        return " ".join(text.split())
    seconds = interval_seconds(text)
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(seconds, 3600)
    if rest == 0 and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if seconds == 86400:
        return "0 0 * * *"
    raise ValueError(f"the interval '{text}' does not divide an hour or a day evenly, so no cron expression "
                     f"repeats it; use 1m to 30m, 1h to 12h or 1d (such as 5m, 15m, 2h), or a cron expression")


def check(text: str) -> str:
    """Validate a ``schedule`` setting; the value is kept as written."""
    cron(text)
    return text


def _check_cron(text: str) -> None:
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"'{text}' is neither an interval nor a cron expression of five fields; {_HELP}")
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                raise ValueError(f"'{text}': the step '/{step}' of the {name} field must be a positive number")
            if base == "*":
                continue
            for bound in base.split("-", 1):
                value = names.index(bound.lower()) + low if bound.lower() in names else \
                    int(bound) if bound.isdigit() else None
                if value is None or not low <= value <= high:
                    raise ValueError(f"'{text}': '{bound}' is not a {name} ({low}-{high}); {_HELP}")


Schedule = Annotated[str, AfterValidator(check)]
"""A source's ``schedule`` setting: an interval or a cron expression, validated when the configuration is read."""
