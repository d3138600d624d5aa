"""An answer's JSON read so that one bad record is one reject, never a page that "is not JSON".

orjson (the fast path) refuses a whole document for one value it cannot hold: a lone UTF-16 surrogate escape
(``"\\ud83d"``, what a JavaScript back end writes for an emoji cut in two), a number beyond a double (``1e400``, a
5,000-digit amount), nesting deeper than 1,024 levels. It also reads an integer beyond 64 bits as a float, so two
ids of 30 digits would become one. Such a page (or one with a run of 20 digits: a cheap test) is read again by
the standard library's parser: a number beyond 64 bits or a double becomes a :class:`BigNumber`, its exact text;
:func:`records` then turns each list element that cannot be a record (not an object, a lone surrogate, nesting
beyond :data:`NESTING`, ``NaN``) into an :class:`Unreadable`, which the paging layer sees as an empty record and
:mod:`ordersync.rejects` turns into one reject with its reason.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

NESTING = 500
"""How deep the lenient parser reads (the standard library's parser recurses: it stops near 1,000 levels); a value
nested deeper is cut off and its record rejected."""
TOO_DEEP = "\x00ordersync: nested too deep\x00"  # what a cut value is replaced by (no vendor writes a NUL there)
_DIGITS = bytes(48 if 48 <= c <= 57 else c for c in range(256))  # every digit as "0"
_LONG_INTEGER = b"0" * 20  # 20 digits and more may not fit 64 bits (2**64 has 20): orjson would make it a float


class NotJson(ValueError):
    """Not JSON even for the lenient parser."""


class Unreadable(dict[str, Any]):
    """A list element that cannot be a record: not a JSON object, or one holding a value no parser keeps exactly.
    Empty to everything that reads records (no cursor, no id), it carries why, and the element as text."""

    def __init__(self, reason: str, raw: str, record_id: str | None = None) -> None:
        super().__init__()
        self.reason, self.raw, self.record_id = reason, raw, record_id


class BigNumber(str):
    """A number no 64-bit integer or double holds exactly (an id of 30 digits, ``1e400``, a 5,000-digit amount),
    kept as its exact text: an id stays itself (two such ids never become one float), an amount is converted from
    its text or refused in our words (:func:`ordersync.values.to_minor`). orjson writes it back as a JSON string."""

    __slots__ = ()


class _Refused:
    """A number the lenient parser read but no record may hold (not finite, or too many digits)."""

    def __init__(self, text: str) -> None:
        self.text = text


def loads(content: bytes) -> tuple[Any, bool]:
    """The document, and whether the lenient parser read it (then pass its lists through :func:`records`).
    Raises :class:`NotJson` when no parser can read it."""
    if content.translate(_DIGITS).find(_LONG_INTEGER) < 0:  # 0.3 ms a 300 kB page; orjson takes 1.4 ms
        try:
            return orjson.loads(content), False
        except orjson.JSONDecodeError:
            pass
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(f"not UTF-8: {exc}") from None
    try:
        return _lenient(text), True
    except RecursionError:
        return _lenient(_cut_deep(text)), True


def _lenient(text: str) -> Any:
    try:
        return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_Refused)
    except json.JSONDecodeError as exc:
        raise NotJson(str(exc)) from None


def _float(text: str) -> float | BigNumber:
    value = float(text)
    return value if math.isfinite(value) else BigNumber(text)


def _int(text: str) -> int | BigNumber:
    if len(text) > 4000:  # Python refuses to read 4,300 digits and more: never try
        return BigNumber(text)
    value = int(text)
    return value if -(2**63) <= value < 2**64 else BigNumber(text)  # orjson writes 64 bits, signed or not


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _cut_deep(text: str) -> str:
    """``text`` with every value nested deeper than :data:`NESTING` replaced by the string :data:`TOO_DEEP`."""
    pieces: list[str] = []
    depth, at, cut_from = 0, 0, None
    for token in _TOKENS.finditer(text):
        kind = token.group(0)[0]
        if kind == '"':
            continue
        depth += 1 if kind in "[{" else -1
        if cut_from is None and depth > NESTING:
            cut_from = token.start()
        elif cut_from is not None and depth == NESTING:
            pieces += [text[at:cut_from], json.dumps(TOO_DEEP)]
            at, cut_from = token.end(), None
    return "".join(pieces) + text[at:]


def records(items: list[Any], lenient: bool) -> list[Any]:
    """``items`` with each element that cannot be a record replaced by an :class:`Unreadable` (the list keeps its
    length: a short page means the last page). Free when every element is an object read by orjson."""
    if not lenient and all(type(item) is dict for item in items):
        return items
    return [_checked(item, lenient) for item in items]


def _checked(item: Any, lenient: bool) -> Any:
    if not isinstance(item, dict):
        kind = "null" if item is None else {list: "list", str: "string", bool: "boolean"}.get(type(item), "number")
        return Unreadable(f"the list holds a {kind} where a record (a JSON object) belongs", _text(item))
    problem = _problem(item) if lenient else None
    if problem is None:
        return item
    ident = item.get("id", item.get("order_reference"))
    return Unreadable(problem, _text(item), str(ident) if isinstance(ident, str | int) and ident != "" else None)


def _problem(record: dict[str, Any]) -> str | None:
    """What in ``record`` no destination can hold exactly, if anything (walked without recursion)."""
    stack: list[Any] = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, _Refused):
            return f"{value.text} is not a JSON number"
        elif isinstance(value, str):
            if value == TOO_DEEP:
                return f"the record is nested deeper than {NESTING} levels"
            if not _encodable(value):
                return "a string holds a lone UTF-16 surrogate (a character cut in two, such as \\ud83d)"
    return None


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any) -> str:
    """``value`` as JSON text (ASCII, so a lone surrogate stays an escape), for the reject's ``raw``."""
    return json.dumps(value, default=lambda v: v.text if isinstance(v, _Refused) else str(v))
