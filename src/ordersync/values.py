"""Conversions every normalizer needs: money to minor units, vendor timestamps to UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3, "JOD": 3}


def exponent(currency: str | None) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def to_minor(amount: object, currency: str | None) -> int | None:
    """Major units (1500, 1500.5, "2.50") to integer minor units, exactly, rounding half-even past the exponent."""
    if amount is None or isinstance(amount, bool):
        return None
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return int((value * (Decimal(10) ** exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def as_int(value: object) -> int | None:
    """Integers that may arrive as strings ("1") or not at all."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def utc(value: object, zone: str | ZoneInfo | None = None) -> datetime | None:
    """A vendor timestamp as an aware UTC datetime; a zone-less one is read in ``zone`` (UTC if none)."""
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
