"""What the settings reference and the ``init`` template know of one settings field, read off its model.

A setting is written once, on its model's field: name, type, default, limits (``ge``/``le``/``gt``) and a
``description`` in the user's words (its first sentence is the template's comment). Two more things a field may
carry, for those renderings only:

- ``examples=[...]``: a value to show where the default says nothing (none, an empty list) or for a required
  setting; further examples become further commented lines of the template;
- ``json_schema_extra=FILTER``: the field is one of the vendor's documented filters (grouped apart).

Rendering is :mod:`ordersync.settings_docs`; this module imports nothing of ordersync at import time, so that every
API's settings module can import :data:`FILTER` from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

FILTER: dict[str, Any] = {"filter": True}
"""``Field(..., json_schema_extra=FILTER)``: one of the vendor's documented filters."""

GROUPS = {
    "required": "Required",
    "own": "Settings",
    "filter": "Filters",
    "common": "Settings every source has",
}


@dataclass(frozen=True)
class Setting:
    """One field of a settings model, as the pages and the template show it."""

    name: str
    kind: str  # the type in words, with its limits
    required: bool
    default: Any
    secret: bool
    description: str
    examples: tuple[Any, ...]
    group: str  # a key of GROUPS

    @property
    def summary(self) -> str:
        """The description's first sentence: the template's comment (the page shows all of it)."""
        return self.description.split(". ")[0].removesuffix(".")

    def shown_values(self) -> list[Any]:
        """What the template writes, first the value of the setting's own line: the default, unless it says
        nothing (none, an empty list), then the examples."""
        values = [] if self.required or self.default in (None, [], ()) else [self.default]
        return values + [e for e in self.examples if e not in values]


def settings_of(model: type[BaseModel], common: type[BaseModel] | None = None) -> list[Setting]:
    """The model's fields in the order a reader wants them: required, its own, its filters, then the fields it
    takes unchanged from ``common`` (the settings every source has)."""
    rows = [_setting(model, name, field, common) for name, field in model.model_fields.items()]
    order = list(GROUPS)
    return sorted(rows, key=lambda s: order.index(s.group))  # stable: the model's order within a group


def _setting(model: type[BaseModel], name: str, field: FieldInfo, common: type[BaseModel] | None) -> Setting:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if field.is_required():
        group = "required"
    elif extra.get("filter"):
        group = "filter"
    elif common is not None and name in common.model_fields and not _declared_below(model, common, name):
        group = "common"
    else:
        group = "own"
    return Setting(name=field.alias or name, kind=_kind(field.annotation) + _limits(field.metadata, name),
                   required=field.is_required(), default=None if field.is_required() else field.default,
                   secret=_is_secret(field.annotation), description=field.description or "",
                   examples=tuple(field.examples or _only_value(field.annotation)), group=group)


def _only_value(annotation: Any) -> tuple[Any, ...]:
    """The one value a ``Literal["eguma"]`` setting can take (its example), else none."""
    args = get_args(annotation)
    return args if get_origin(annotation) is Literal and len(args) == 1 else ()


def _declared_below(model: type[BaseModel], common: type[BaseModel], name: str) -> bool:
    """Whether a class between ``model`` and ``common`` declares ``name`` again (its own default, limits)."""
    return any(name in vars(cls).get("__annotations__", {}) for cls in model.__mro__
               if cls is not common and isinstance(cls, type) and issubclass(cls, common))


def _kind(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        values = [f"`{toml_value(a)}`" for a in args]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if annotation in (list, tuple) or get_origin(annotation) in (list, tuple, Sequence):
        return "list of " + (_kind(args[0]).removeprefix("one of ") if args else "text")
    if args and len(args) == 1:  # X | None
        return _kind(args[0])
    return {str: "text", int: "integer", float: "number", bool: "true or false", SecretStr: "secret text"}.get(
        annotation, "text")


_BOUNDS = ((Ge, "at least", "ge"), (Gt, "above", "gt"), (Le, "at most", "le"), (Lt, "below", "lt"))


def _limits(metadata: Sequence[Any], name: str) -> str:
    from ordersync.apis.base import _LIMITS  # the upper bounds shared by every API's setting of that name

    words = [f"{word} {_number(getattr(item, attr))}" for item in metadata for kind, word, attr in _BOUNDS
             if isinstance(item, kind)]
    words += ["not empty" for item in metadata if isinstance(item, MinLen)]
    if name in _LIMITS and not any(w.startswith("at most") for w in words):
        words.append(f"at most {_number(_LIMITS[name][0])}")
    return f", {', '.join(words)}" if words else ""


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,g}"


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(a) for a in get_args(annotation))


def toml_value(value: Any) -> str:
    """``value`` as TOML writes it (a whole float as an integer: ``30``, which a float setting accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string

