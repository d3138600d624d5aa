"""Small builders for the response schemas each sandbox writes from its vendor's documentation.

Schemas used to be inferred from a sample of generated records, so a field that happened to be null in the sample
was typed ``null`` and a record changed through the control API no longer matched its own document. These
builders make the documented shape explicit instead: every field's type, whether it may be null, and which keys
every record carries.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
ANY: Schema = {}  # documented only as null in the vendor's sample: its type is unknown, so any value is allowed


def nullable(schema: Schema) -> Schema:
    """``schema`` or null (a field the documentation shows as null in one record and filled in another)."""
    if not schema:
        return schema
    if "type" in schema and len(schema) == 1:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return {"type": [*types, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """An object with ``properties``, all required except ``optional`` (those an include or an option adds)."""
    required = [name for name in properties if name not in optional]
    return {"type": "object", "properties": properties, "required": required}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def one_of_id_or(schema: Schema, id_schema: Schema | None = None) -> Schema:
    """A nested object the API shows as its id unless it is included (Firespring's ``includes``)."""
    return {"anyOf": [id_schema or INTEGER, schema]}


class ControlError(ValueError):
    """A control request whose ``field`` does not have the vendor's type: answered 422, naming the field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


_TYPES: dict[str, type] = {"string": str, "object": dict, "array": list, "null": type(None)}


def _has_type(value: Any, name: str) -> bool:
    if name in ("integer", "number", "boolean"):
        if name == "boolean":
            return isinstance(value, bool)
        kinds = (int,) if name == "integer" else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def problem(value: Any, schema: Schema) -> str | None:
    """Why ``value`` does not fit ``schema`` (the subset these builders write), or None when it does."""
    if "anyOf" in schema:
        found = [problem(value, option) for option in schema["anyOf"]]
        return None if None in found else " or ".join(p for p in found if p)
    if "const" in schema and value != schema["const"]:
        return f"must be {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(repr, schema['enum']))}"
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_has_type(value, name) for name in names):
            return f"must be {' or '.join(names)}, not {type(value).__name__} {value!r:.40}"
    if isinstance(value, dict) and "properties" in schema:
        return _object_problem(value, schema)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            inner = problem(item, schema["items"])
            if inner:
                return f"[{index}] {inner}"
    return None


def _object_problem(value: dict[str, Any], schema: Schema) -> str | None:
    for key, inner_schema in schema["properties"].items():
        if key in value:
            inner = problem(value[key], inner_schema)
            if inner:
                return f".{key} {inner}"
    return None


def check_fields(data: dict[str, Any], fields: dict[str, Schema]) -> None:
    """Raise :class:`ControlError` for the first field of ``data`` that ``fields`` types and it does not fit."""
    for key, schema in fields.items():
        if key in data:
            found = problem(data[key], schema)
            if found:
                raise ControlError(key, found)
