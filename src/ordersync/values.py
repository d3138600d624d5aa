"""Conversions every normalizer needs: money to minor units, vendor timestamps to UTC."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ordersync.jsontext import BigNumber

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3, "JOD": 3}


def exponent(currency: str | None) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def to_minor(amount: object, currency: str | None) -> int | None:
    """Major units (1500, 1500.5, "2.50") to integer minor units, exactly, rounding half-even past the exponent.

    The common shapes (integers, plain decimal strings and floats) are converted with integer arithmetic on their
    digits, which is several times cheaper than ``Decimal``; anything else (exponents, underscores, non-ASCII
    digits) takes the exact ``Decimal`` path. Either way the result is exact: whether it fits a column is the
    engine's check, not a reason to round here. Absent (None): None. Anything else that is not a number (``"12,50"``,
    ``"lots"``, ``true``, an object, ``NaN``, more than :data:`MAX_DIGITS` digits) raises ``ValueError`` in our
    words, so that its record is rejected, never stored with a NULL amount (a revenue undercounted in silence).
    """
    kind = type(amount)
    if kind is int:
        return _scaled(amount, currency)  # type: ignore[arg-type]
    if kind is str:
        textual: str = amount.strip()  # type: ignore[attr-defined]
    elif kind is float:
        textual = repr(amount)
    elif amount is None:
        return None
    elif isinstance(amount, bool | dict | list):
        raise ValueError(f"the amount {_shown(amount)} is not a number")
    else:
        textual = str(amount).strip()
    match = _PLAIN(textual)
    if match is None:
        return _to_minor_decimal(textual, currency)
    sign, whole, fraction = match.groups()
    if not whole and not fraction:  # "", ".", "+": not a number (Decimal refuses them too)
        raise ValueError(f"the amount {_shown(amount)} is not a number")
    if len(whole) > MAX_DIGITS:
        raise ValueError(_too_many_digits(textual))
    places = _EXPONENTS.get((currency or "").upper(), 2)
    fraction = fraction or ""
    kept, rest = fraction[:places], fraction[places:]
    value = int((whole or "0") + kept + "0" * (places - len(kept)))
    if rest:
        first = rest[0]
        if first > "5" or (first == "5" and (rest.rstrip("0") != "5" or value & 1)):
            value += 1
    return -value if sign == "-" else value


_PLAIN = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?").fullmatch
_SCALE = [10**n for n in range(4)]
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])


MAX_DIGITS = 30
"""Digits an amount may have before its decimal point (signed 64 bits hold 19): more is not an amount."""


def _shown(value: object) -> str:
    shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _too_many_digits(textual: str) -> str:
    digits = sum(c.isdigit() for c in textual)
    return f"the amount {textual[:12]}... has {digits:,} digits: no currency amount is that large"


def _scaled(amount: int, currency: str | None) -> int:
    if not -_LARGEST < amount < _LARGEST:  # checked before the number is ever written out as text
        digits = int(amount.bit_length() * 0.30103) + 1  # never written out: Python refuses 4,300 digits and more
        raise ValueError(f"the amount has about {digits:,} digits: no currency amount is that large")
    return amount * _SCALE[_EXPONENTS.get((currency or "").upper(), 2)]


_LARGEST = 10**MAX_DIGITS


def _to_minor_decimal(textual: str, currency: str | None) -> int | None:
    """The reference conversion with ``Decimal`` (exact: unlimited precision), for what the fast path leaves."""
    try:
        value = Decimal(textual)
    except InvalidOperation:
        hint = " (a decimal comma? amounts are written 12.50)" if re.fullmatch(r"[+-]?[0-9.]*,[0-9]+", textual) else ""
        raise ValueError(f"the amount {_shown(textual)} is not a number{hint}") from None
    if not value.is_finite():
        raise ValueError(f"the amount {_shown(textual)} is not a number")
    if value.adjusted() > MAX_DIGITS:  # a number no currency holds: not worth building
        raise ValueError(f"the amount {textual[:12]}... is about 10^{value.adjusted()}: no currency amount is that "
                         "large")
    scaled = _EXACT.multiply(value, Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=_EXACT))


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def record_key(value: object) -> str:
    """A record's id as the text of its key; a record without one (missing, null, empty) cannot be stored."""
    if value is None or isinstance(value, bool | dict | list) or (isinstance(value, str) and not value.strip()):
        raise ValueError("the record has no id" if value in (None, "") else f"the record's id {value!r} is not an id")
    return value.strip() if isinstance(value, str) else str(value)


def cents(value: object, field: str) -> int | None:
    """An amount the vendor documents as integer minor units (``*_in_cents``, Firespring's amounts): an integer,
    or its digits as text (``"5719"``), exactly; absent (None): None. Anything else (``"57.19"``, ``"lots"``, a
    fraction, a boolean) raises ``ValueError`` naming ``field``, so that its record is rejected, never stored with
    a NULL amount."""
    if type(value) is int:
        return _scaled(value, "JPY")  # type: ignore[arg-type]  # exponent 0: the value itself, bounded
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        if len(value.strip().lstrip("+-")) > MAX_DIGITS:
            raise ValueError(f"{field}: {_too_many_digits(value.strip())}")
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    raise ValueError(f"{field} is {_shown(value)}, not a whole number of minor units (cents) as documented")


def as_int(value: object) -> int | None:
    """Integers that may arrive as strings ("1") or not at all."""
    if type(value) is int:  # the common case, without a round trip through its text
        return value
    if value is None or isinstance(value, bool) or type(value) is BigNumber:  # beyond 64 bits: not a count or
        return None  # a numeric cursor, and no state may hold it (an id stays exact text: :func:`record_key`)
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def utc(value: object, zone: str | ZoneInfo | None = None) -> datetime | None:
    """A vendor timestamp as an aware UTC datetime; a zone-less one is read in ``zone`` (UTC if none)."""
    if type(value) is str:  # the common case first: an exact ISO 8601 text (Python 3.11 reads "Z" too)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=ZoneInfo(zone) if isinstance(zone, str) else (zone or UTC))
            return _in_utc(parsed)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00") if value.strip().endswith("Z") else value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        tz = ZoneInfo(zone) if isinstance(zone, str) else (zone or UTC)
        parsed = parsed.replace(tzinfo=tz)
    return _in_utc(parsed)


EARLIEST, LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; one beyond the calendar once moved there (``0001-01-01T00:00:00+01:00`` is in year 0,
    ``9999-12-31T23:59:59-01:00`` in year 10000) is held at its first or last instant instead of raising
    ``OverflowError`` for the whole page. Cursors never move past the run's start (:mod:`ordersync.cursor`)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if moment.year == 1 else LATEST


def text(value: object) -> str | None:
    """A string field, with empty strings and non-strings of no meaning turned into None."""
    if type(value) is str:  # the common case first
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def join_name(*parts: object) -> str | None:
    words = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
    return " ".join(words) or None
