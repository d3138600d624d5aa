"""The JSON Schema of ``ordersync status --json`` committed in docs/ is the model's (monitoring reads the file)."""

from __future__ import annotations

from pathlib import Path

from ordersync.status_model import SCHEMA_PATH, json_schema

ROOT = Path(__file__).parents[1]


def test_the_committed_schema_is_the_models() -> None:
    committed = (ROOT / SCHEMA_PATH).read_bytes()
    assert committed == json_schema(), f"{SCHEMA_PATH} is stale: run 'python -m ordersync.status_model'"
