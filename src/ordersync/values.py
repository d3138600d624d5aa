"""Conversions every normalizer needs: money to minor units, vendor timestamps to UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3, "JOD": 3}


def exponent(currency: str | None) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def to_minor(amount: object, currency: str | None) -> int | None:
    """Major units (1500, 1500.5, "2.50") to integer minor units, exactly, rounding half-even past the exponent.

    The common shapes (integers, plain decimal strings and floats) are converted with integer arithmetic on their
    digits, which is several times cheaper than ``Decimal``; anything else (exponents, underscores, non-ASCII
    digits) takes the exact ``Decimal`` path. Either way the result is exact, however large: whether it fits a
    column is the engine's check, not a reason to round here. Not a number: None.
    """
    kind = type(amount)
    if kind is int:
        return amount * _SCALE[_EXPONENTS.get((currency or "").upper(), 2)]  # type: ignore[operator]
    if kind is str:
        textual: str = amount.strip()  # type: ignore[attr-defined]
    elif kind is float:
        textual = repr(amount)
    elif amount is None or isinstance(amount, bool):
        return None
    else:
        textual = str(amount).strip()
    match = _PLAIN(textual)
    if match is None:
        return _to_minor_decimal(textual, currency)
    sign, whole, fraction = match.groups()
    if not whole and not fraction:  # "", ".", "+": not a number (Decimal refuses them too)
        return None
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


def _to_minor_decimal(textual: str, currency: str | None) -> int | None:
    """The reference conversion with ``Decimal`` (exact: unlimited precision), for what the fast path leaves."""
    try:
        value = Decimal(textual)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() > 4000:  # a number no currency holds: not worth building
        return None if not value.is_finite() else _too_large(value)
    scaled = _EXACT.multiply(value, Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN, context=_EXACT))


def _too_large(value: Decimal) -> int:
    """A stand-in for an absurdly large amount: far outside any column, so the record is rejected, not stored."""
    return (1 << 128) if value > 0 else -(1 << 128)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def record_key(value: object) -> str:
    """A record's id as the text of its key; a record without one (missing, null, empty) cannot be stored."""
    if value is None or isinstance(value, bool | dict | list) or (isinstance(value, str) and not value.strip()):
        raise ValueError("the record has no id" if value in (None, "") else f"the record's id {value!r} is not an id")
    return value.strip() if isinstance(value, str) else str(value)


def as_int(value: object) -> int | None:
    """Integers that may arrive as strings ("1") or not at all."""
    if type(value) is int:  # the common case, without a round trip through its text
        return value
    if value is None or isinstance(value, bool):
        return None
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
            return parsed.astimezone(UTC)
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
    return parsed.astimezone(UTC)


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
