"""Issue 27 part 7: what changed between two versions of an order, as the history command shows it. A list that
changes shows its old and new value, nested objects show the path of what changed in them, a null is told apart
from a key that is not there, and ``--format jsonl`` says the same as the table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ordersync.apis.base import Rows
from ordersync.cli import app
from ordersync.history import ABSENT, changes, render_changes
from ordersync.store import open_store

Change = tuple[Any, Any]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Change]:
    """The changes between two versions that differ only in their vendor record."""
    columns = {"status": "paid", "is_paid": True, "total_minor": 100, "currency": "NOK", "updated_at": None}
    return changes({**columns, "raw": orjson.dumps(before).decode()}, {**columns, "raw": orjson.dumps(after).decode()})


NOTE = {"note": "Called the customer", "by": "ops"}
URL = "https://tickets.example.org/orders/170000100026/vouchers/a7f3c2d19e8b4f60b2d4e1c9a8f7b6e5"


@pytest.mark.parametrize(("before", "after", "expected"), [
    pytest.param({"order_notes": []}, {"order_notes": [NOTE]}, {"raw.order_notes": ([], [NOTE])},
                 id="a list that gains an entry (Prio 170000100026)"),
    pytest.param({"tags": ["a", "b", "c"]}, {"tags": ["a"]}, {"raw.tags": (["a", "b", "c"], ["a"])},
                 id="a list that loses entries"),
    pytest.param({"order_notes": None}, {"order_notes": [NOTE]}, {"raw.order_notes": (None, [NOTE])},
                 id="a null that becomes a list"),
    pytest.param({"lines": [{"qty": 1, "name": "A"}]}, {"lines": [{"qty": 2, "name": "A"}]},
                 {"raw.lines[0].qty": (1, 2)}, id="an entry of a list of the same length"),
    pytest.param({"customer": {"address": {"city": "Oslo", "zip": "0150"}}},
                 {"customer": {"address": {"city": "Bergen", "zip": "0150"}}},
                 {"raw.customer.address.city": ("Oslo", "Bergen")}, id="a nested object"),
    pytest.param({"customer": {"name": "Kari"}}, {"customer": None}, {"raw.customer": ({"name": "Kari"}, None)},
                 id="a nested object that becomes null"),
    pytest.param({"meta": {}}, {"meta": {"source": "web"}}, {"raw.meta.source": (ABSENT, "web")},
                 id="an empty object that gains a key"),
    pytest.param({"note": "x"}, {"note": None}, {"raw.note": ("x", None)}, id="a value that becomes null"),
    pytest.param({"note": "x", "id": 1}, {"id": 1}, {"raw.note": ("x", ABSENT)}, id="a key removed"),
    pytest.param({"id": 1}, {"id": 1, "note": None}, {"raw.note": (ABSENT, None)}, id="a key added as null"),
    pytest.param({"paid": 1}, {"paid": True}, {"raw.paid": (1, True)}, id="1 and true are not the same JSON"),
    pytest.param({"a": [1, {"b": []}]}, {"a": [1, {"b": [None]}]}, {"raw.a[1].b": ([], [None])},
                 id="a list inside an object inside a list"),
])
def test_changes_of_lists_nested_objects_and_nulls(before: dict[str, Any], after: dict[str, Any],
                                                   expected: dict[str, Change]) -> None:
    assert diff(before, after) == expected


def test_an_unchanged_record_has_no_changes_and_each_change_renders_as_json() -> None:
    assert diff({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == {}
    shown = render_changes(diff({"order_notes": [], "note": "x", "gone": 1, "n": None},
                                {"order_notes": [NOTE], "note": None, "n": {"k": True}}))
    assert shown == ('raw.gone: 1 -> (absent); raw.n: null -> {"k":true}; raw.note: x -> null; '
                     'raw.order_notes: [] -> [{"note":"Called the customer","by":"ops"}]')


def test_history_command_shows_a_grown_list_in_the_table_and_in_jsonl(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
    try:
        for when, raw in (("2026-09-10T09:00:00Z", {"order_notes": [], "note": "x", "url": URL}),
                          ("2026-09-11T09:00:00Z", {"order_notes": [NOTE], "url": None})):
            row = {"order_id": "170000100026", "status": "ORDER_CONFIRMED", "currency": "EUR", "total_minor": 100,
                   "is_paid": True, "created_at": datetime(2026, 9, 10, 8, tzinfo=UTC), "updated_at": None, "raw": raw}
            store.write_page("prio", "prio", "orders", Rows(orders=[row]), {"c": when})
    finally:
        store.close()
    runner = CliRunner()
    base = ["history", "prio", "170000100026", "--db", str(tmp_path / "orders.db")]
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "raw.order_notes: [] ->" in table.output and '[{"note":"Called' in table.output  # wrapped in a cell
    assert "raw.note: x -> (absent)" in table.output and "-> None" not in table.output
    assert "…" not in table.output and "raw.url:" in table.output  # a long value wraps in its cell, never cut
    jsonl = runner.invoke(app, [*base, "--format", "jsonl"])
    first, second = (json.loads(line) for line in jsonl.output.splitlines())
    assert second["changes"] == {"raw.note": ["x", None], "raw.order_notes": [[], [NOTE]], "raw.url": [URL, None]}
    assert second["removed"] == ["raw.note"] and second["added"] == []
    assert first["changes"] == {} and first["added"] == first["removed"] == []
