"""The Airflow task and the Prefect flow of docs/orchestrators.md, run as written against a sandbox (the two
orchestrators' decorators are stood in for: they only register the function)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from ordersync.errors import SyncError
from tests.support import running

DOC = Path(__file__).parents[1] / "docs" / "orchestrators.md"


def python_blocks() -> dict[str, str]:
    """The python code blocks of the doc, by the heading above them."""
    found: dict[str, str] = {}
    heading = ""
    for i, part in enumerate(DOC.read_text().split("```")):
        if i % 2 == 0:
            headings = [line for line in part.splitlines() if line.startswith("## ")]
            heading = headings[-1][3:] if headings else heading
        elif part.startswith("python\n"):
            found[heading] = part.removeprefix("python\n")
    return found


@pytest.fixture
def orchestrators(monkeypatch: pytest.MonkeyPatch) -> None:
    def decorator(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda fn: fn)

    airflow, decorators, prefect = (types.ModuleType(n) for n in ("airflow", "airflow.decorators", "prefect"))
    decorators.task = decorator  # type: ignore[attr-defined]
    prefect.flow = decorator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.decorators", decorators)
    monkeypatch.setitem(sys.modules, "prefect", prefect)


def test_the_airflow_task_and_the_prefect_flow_sync_and_fail_as_documented(
        orchestrators: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks()
    assert set(blocks) == {"Airflow", "Prefect", "Your own code"}
    compile(blocks["Your own code"], "own", "exec")  # it would call the vendor's real API
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "ordersync.toml"
    with running("frontcore", orders=40, api_key="doc-key") as fc:
        config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n[sources.oslo-courses]\n'
                          f'type = "frontcore"\napi_key = "doc-key"\nbase_url = "{fc.url}/v2"\n'
                          f'requests_per_second = 1000\n')
        airflow: dict[str, Any] = {}
        exec(blocks["Airflow"].replace("/opt/ordersync/ordersync.toml", str(config)), airflow)
        assert airflow["sync_oslo_courses"]() == 40 + 10  # orders and customers
        prefect: dict[str, Any] = {}
        exec(blocks["Prefect"], prefect)
        assert prefect["sync_orders"]() is None
        config.write_text(config.read_text().replace('"doc-key"', '"not-the-key"'))
        with pytest.raises(SyncError, match="oslo-courses/orders: .*Wrong API Key"):
            prefect["sync_orders"](["oslo-courses"])
