"""Pieces of the sandboxes' OpenAPI documents: parameters, answers, and record schemas read off the data.

A record schema is inferred from a sample of the records the sandbox serves (types, nullability, the keys every
record has), so that it describes exactly what the generator writes and never drifts from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ordersync.sandbox.errors import ErrorStyle

_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"))


def query_param(name: str, schema_type: str, description: str, empty: bool = True, **extra: Any) -> dict[str, Any]:
    """One optional OpenAPI query parameter. ``empty``: the API takes ``name=`` as if the parameter were absent
    (``allowEmptyValue``), so that a typed parameter's empty value is one the published schema admits."""
    return {"name": name, "in": "query", "required": False, "description": description, "allowEmptyValue": empty,
            "schema": {"type": schema_type, **extra}}


def json_answer(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def error_answers(style: ErrorStyle, statuses: dict[str, str]) -> dict[str, Any]:
    """Error answers in the vendor's ``style``; every API may also answer 429 (with Retry-After) and 5xx."""
    retry = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
    answers = {status: style.content(text) for status, text in statuses.items()}
    answers.setdefault("429", {**style.content("too many requests"), "headers": retry})
    for status, text in (("500", "server error"), ("502", "bad gateway"), ("503", "service unavailable")):
        answers.setdefault(status, style.content(text))
    answers["503"]["headers"] = retry
    return answers


class _Shape:
    """What a set of JSON values has in common: their types, and per object key / array item, a shape."""

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.keys: dict[str, _Shape] = {}
        self.objects = 0
        self.present: dict[str, int] = {}
        self.items: _Shape | None = None

    def add(self, value: Any) -> None:
        if value is None:
            self.types.add("null")
            return
        kind = next(name for cls, name in _JSON_TYPES if isinstance(value, cls))
        self.types.add(kind)
        if kind == "object":
            self.objects += 1
            for key, inner in value.items():
                self.keys.setdefault(key, _Shape()).add(inner)
                self.present[key] = self.present.get(key, 0) + 1
        elif kind == "array":
            self.items = self.items or _Shape()
            for inner in value:
                self.items.add(inner)

    def schema(self) -> dict[str, Any]:
        types = set(self.types)
        if {"integer", "number"} <= types:
            types.discard("integer")
        if not types:
            return {}
        schema: dict[str, Any] = {"type": sorted(types)[0] if len(types) == 1 else sorted(types)}
        if self.keys:
            schema["properties"] = {key: shape.schema() for key, shape in self.keys.items()}
            required = [key for key, count in self.present.items() if count == self.objects]
            if required:
                schema["required"] = required
        if self.items is not None and self.items.types:
            schema["items"] = self.items.schema()
        return schema


def infer_schema(samples: Iterable[Any]) -> dict[str, Any]:
    """The JSON Schema every one of ``samples`` satisfies, as tight as they allow."""
    shape = _Shape()
    for sample in samples:
        shape.add(sample)
    return shape.schema()
