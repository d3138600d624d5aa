"""The measurement harnesses of benchmarks/: the fast server serves every API's sandbox records in a way that the
floor and ordersync both read completely, and the bounded chaos run (faults, data changing while paging,
SIGKILLed syncs) finds nothing lost, duplicated or stale.

These are real-socket, multi-process tests (the harnesses exist to measure processes), so they are few.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fastserver import KINDS, render  # noqa: E402
from harness import SYNC_ENV, bench_config, count_orders, measure, sync_argv  # noqa: E402
from run import fast_server, server_stats  # noqa: E402
from targets import APIS, FIELDS, LISTINGS, missing_parts  # noqa: E402

ORDERS = 600


def test_every_api_in_the_registry_has_its_benchmark_contenders() -> None:
    """``make bench`` runs every API of the registry: a new one fails here until its contenders are written."""
    assert {api: missing_parts(api, ("KINDS", KINDS)) for api in APIS} == {api: [] for api in APIS}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = tmp_path_factory.mktemp("records")
    return {api: render(api, ORDERS, cache) for api in APIS}


@pytest.fixture(params=APIS)
def served(request: pytest.FixtureRequest, records: dict[str, Path]) -> Iterator[tuple[str, str]]:
    with fast_server(request.param, records[request.param]) as root:
        yield request.param, root


def test_fast_server_serves_every_record_of_the_sandbox_once(served: tuple[str, str],
                                                             records: dict[str, Path]) -> None:
    api, root = served
    import orjson

    rendered = [orjson.loads(line) for line in records[api].read_bytes().splitlines()]
    listed = [FIELDS[api].id(r) for page in LISTINGS[api](root) for r in page]
    assert len(rendered) == ORDERS
    assert sorted(listed) == sorted(FIELDS[api].id(r) for r in rendered)


def test_ordersync_reads_everything_from_the_fast_server(served: tuple[str, str], tmp_path: Path) -> None:
    api, root = served
    url = f"sqlite:///{tmp_path / 'o.db'}"
    result = measure(sync_argv(bench_config(tmp_path, api, root, url, requests_per_second=10_000)), SYNC_ENV)
    assert result.code == 0, result.stderr
    assert count_orders(url) == ORDERS
    assert server_stats(root)["requests"] > 0


@pytest.mark.timeout(300)
def test_bounded_chaos_loses_nothing() -> None:
    """make chaos --quick: all four APIs, faults, inserts and changes while paging, SIGKILLs; 0 lost / dup / stale."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--quick", "--seed", "1"],
                            capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(200)
def test_bounded_chaos_into_duckdb_loses_nothing() -> None:
    """The same into DuckDB, which writes in the sync's own process: two APIs (a windowed one and a paged one),
    fewer orders and kills, to stay cheap."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--quick", "--seed", "1",
                             "--destinations", "duckdb", "--apis", "eguma,prio", "--orders", "1500", "--kills", "3"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| eguma | duckdb |" in result.stdout and "| prio | duckdb |" in result.stdout


@pytest.mark.parametrize("destination", ["sqlite", "duckdb"])
def test_the_driver_alone_replays_every_write_of_ordersync(destination: str, records: dict[str, Path],
                                                           tmp_path: Path) -> None:
    """store_floor.py's floor is only a floor if the bare driver writes what ordersync wrote: the same rows in every
    table, each page's state, from the calls recorded (driver_floors.py)."""
    import sqlalchemy as sa
    from driver_floors import FLOORS
    from store_floor import pages

    floor = FLOORS[destination]()
    store = floor.open(tmp_path, None)
    assert store is not None
    floor.take()
    store.open_batch("bench", "orders")
    for number, (_count, rows) in enumerate(pages("eguma", records["eguma"])):
        store.write_page("bench", "eguma", "orders", rows, {"page": number})
        floor.replay(floor.take())
    store.close_batch("bench", "orders")
    floor.replay(floor.take())
    store.close()
    floor.close()
    suffix = "db" if destination == "sqlite" else "duckdb"
    tables = ("orders", "order_lines", "payments", "customers", "order_versions", "_ordersync_state")
    counts = {}
    for name in ("ordersync", "floor"):
        engine = sa.create_engine(f"{destination}:///{tmp_path / f'{name}.{suffix}'}")
        with engine.connect() as conn:
            counts[name] = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in tables}
            counts[name]["state"] = conn.exec_driver_sql("SELECT state FROM _ordersync_state").scalar()
        engine.dispose()
    assert counts["floor"] == counts["ordersync"] and counts["floor"]["orders"] == ORDERS
