"""Query parameter parsing shared by the sandboxes: each refusal is a :class:`BadParam` naming the parameter.

Numbers are bounded to what the store can hold (64-bit), so an absurd value is the vendor's 400/422, never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from ordersync.sandbox.errors import BadParam

INT64_MAX = 2**63 - 1


def int_param(name: str, value: str | None, default: int | None = None, low: int = 0,
              high: int = INT64_MAX) -> int | None:
    """A whole number in ``[low, high]``; ``default`` when absent or empty."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = _whole_decimal(name, value)
    if not low <= number <= high:
        bound = f"between {low} and {high}" if high != INT64_MAX else f"at least {low} (and at most {INT64_MAX})"
        raise BadParam(name, f"Invalid value for {name}: {value}. It must be {bound}")
    return number


def _whole_decimal(name: str, value: str) -> int:
    """``5.0`` (or ``5e0``) is a whole number too: JSON Schema's ``integer``, which the OpenAPI documents publish,
    admits it, so a client generating values from the document may send it."""
    try:
        number = Decimal(value)
        if number.is_finite() and number == number.to_integral_value() and abs(number) <= 2**64:
            return int(number)
    except InvalidOperation:
        pass
    raise BadParam(name, f"Invalid value for {name}: '{value}' is not a whole number")


def bool_param(name: str, value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadParam(name, f"Invalid value for {name}: '{value}'. Use true or false")


def choice_param(name: str, value: str | None, allowed: Sequence[str], default: str | None = None) -> str | None:
    if value is None or value == "":
        return default
    if value not in allowed:
        raise BadParam(name, f"Invalid value for {name}: '{value}'. Use one of: {', '.join(allowed)}")
    return value


def datetime_param(name: str, value: str, hint: str) -> datetime:
    """``datetime.fromisoformat`` that refuses what is not a real instant (``2024-02-30``, ``T25:00``, ``+99:99``,
    a year whose UTC form leaves the calendar) with the parameter's name and ``hint`` (the expected format)."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadParam(name, f"Invalid value for {name}: '{value}' is not a valid date. Use {hint}") from None
    return moment


def db_time(moment: datetime | None) -> str | None:
    """How instants are kept in the store's index columns: UTC, sortable text to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


# Regular expressions for the OpenAPI documents: only real calendar dates (29 February aside) and clock times, so
# that a value the document allows is one the sandbox accepts.
CALENDAR_DATE = (r"[12]\d{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
                 r"|02-(?:0[1-9]|1\d|2[0-8]))")
CLOCK_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
UTC_OFFSET = r"[+-](?:0\d|1[0-4]):[0-5]\d"
