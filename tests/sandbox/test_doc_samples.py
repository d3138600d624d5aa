"""Each sandbox against its vendor documentation's own sample answers: the same shape, whatever the values.

``samples/<api>/`` holds the sample answers copied from the vendor's documentation (one JSON file each, as printed
there) and ``requests.json``, which names the request each sample answers. The sandbox is asked that request and its
answer must have the sample's shape: the same field names at every level, the same nesting and the same JSON types
(string, number, boolean, object, array; a null matches any type, since a field that may be empty is empty in some
records and not in others). Values differ: they are generated.

Where a vendor's sample is itself machine-made, ``requests.json`` says so: ``placeholder`` is the value the sample
shows for an object it could not render (any object matches it), ``filler`` the made-up field names its generator
added, and ``"complete": false`` lets the sandbox have fields the sample lacks (it must still have every field the
sample shows). Every sandbox in the registry must have samples here: a new API's sandbox fails until it does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ordersync.sandbox import registry
from tests.sandbox.inprocess import InProcess, auth

SAMPLES = Path(__file__).parent / "samples"
KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


@dataclass
class Reading:
    """How to read one sample (see the module's docstring)."""

    placeholder: Any = None
    filler: frozenset[str] = frozenset()
    complete: bool = True


@dataclass
class Shape:
    """The shape of several JSON values seen at one place: their kinds, their objects' fields, their arrays' items."""

    kinds: set[str] = field(default_factory=set)
    fields: dict[str, list[Any]] = field(default_factory=dict)
    items: list[Any] = field(default_factory=list)


def shape_of(values: list[Any], reading: Reading) -> Shape:
    shape = Shape()
    for value in values:
        if value is None or (reading.placeholder is not None and value == reading.placeholder):
            continue  # an empty value, or one the sample could not show: any kind matches it
        shape.kinds.add(KINDS[type(value)])
        if isinstance(value, dict):
            for name, inner in value.items():
                if name not in reading.filler:
                    shape.fields.setdefault(name, []).append(inner)
        elif isinstance(value, list):
            shape.items.extend(value)
    return shape


def differences(sample: list[Any], answer: list[Any], reading: Reading, path: str = "$") -> list[str]:
    """Where the values ``answer`` do not have the shape of the values ``sample`` (one line each)."""
    want, got = shape_of(sample, reading), shape_of(answer, reading)
    if not want.kinds:
        return []
    if not got.kinds:
        return [f"{path}: always null or absent in the sandbox, {'/'.join(sorted(want.kinds))} in the sample"]
    if want.kinds != got.kinds:
        return [f"{path}: {'/'.join(sorted(got.kinds))} in the sandbox, {'/'.join(sorted(want.kinds))} in the sample"]
    found: list[str] = []
    missing, extra = sorted(set(want.fields) - set(got.fields)), sorted(set(got.fields) - set(want.fields))
    if missing:
        found.append(f"{path}: the sandbox lacks {', '.join(missing)}")
    if extra and reading.complete:
        found.append(f"{path}: the sandbox adds {', '.join(extra)}")
    for name in sorted(set(want.fields) & set(got.fields)):
        found += differences(want.fields[name], got.fields[name], reading, f"{path}.{name}")
    if want.items:
        found += differences(want.items, got.items, reading, f"{path}[]") if got.items else [
            f"{path}: every array is empty in the sandbox"]
    return found


def requests_of(api: str) -> dict[str, dict[str, Any]]:
    index = SAMPLES / api / "requests.json"
    assert index.is_file(), f"the {api} sandbox has no documentation samples: add {index.parent}/ (see this module)"
    requests: dict[str, dict[str, Any]] = json.loads(index.read_text(encoding="utf-8"))
    assert requests, f"{index} names no sample"
    return requests


@pytest.mark.parametrize("api", sorted(registry()))
def test_the_sandbox_answers_in_the_shape_of_the_documentation_samples(api: str) -> None:
    sandbox = InProcess(api, orders=400, rate_limit=False)
    credentials = auth(sandbox)
    found: list[str] = []
    for name, request in requests_of(api).items():
        sample = json.loads((SAMPLES / api / name).read_text(encoding="utf-8"))
        reading = Reading(request.get("placeholder"), frozenset(request.get("filler", ())),
                          request.get("complete", True))
        answer = sandbox.get(request["path"], params={**credentials.get("params", {}), **request["params"]},
                             headers={**credentials.get("headers", {}), **request.get("headers", {})})
        assert answer.status_code == 200, f"{name}: {answer.status_code} {answer.text[:200]}"
        found += [f"{name} {line}" for line in differences([sample], [answer.json()], reading)]
    assert found == [], "\n".join(found)


def test_the_comparison_sees_a_renamed_field_a_changed_type_a_new_level_and_an_empty_list() -> None:
    sample = [{"id": 1, "name": "a", "lines": [{"qty": 1}], "note": None, "user": {"id": 2}}]
    plain = Reading()
    assert differences(sample, [{"id": 7, "name": "b", "lines": [{"qty": 3}], "note": "x", "user": None},
                                {"id": 8, "name": "c", "lines": [], "note": None, "user": {"id": 3}}], plain) == []
    assert differences(sample, [{"id": 7, "name": "b", "lines": [{"qty": 3}], "note": "x", "user": None}], plain) == [
        "$.user: always null or absent in the sandbox, object in the sample"]
    assert differences(sample, [{"id": "7", "title": "b", "lines": [], "note": None, "user": {"id": 2, "x": 1}}],
                       plain) == ["$: the sandbox lacks name", "$: the sandbox adds title",
                                  "$.id: string in the sandbox, number in the sample",
                                  "$.lines: every array is empty in the sandbox", "$.user: the sandbox adds x"]
    open_reading = Reading(placeholder={"value": "?"}, filler=frozenset({"noise"}), complete=False)
    assert differences([{"a": {"value": "?"}, "b": {"noise": 1, "c": 1}}],
                       [{"a": {"anything": [1]}, "b": {"c": 2, "d": "more"}, "e": True}], open_reading) == []
    assert differences([{"b": {"c": 1}}], [{"b": {"d": 1}}], open_reading) == ["$.b: the sandbox lacks c"]
