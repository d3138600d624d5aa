"""The Dagster integration with the real engine: Dagster's own in-process execution against the four sandboxes,
into a real database; two runs at once in separate processes; pools and schedules; the webserver's GraphQL."""

import os
import runpy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import dagster as dg
import httpx
import pytest

from ordersync import api
from ordersync.errors import ConfigError
from ordersync.integrations.dagster import (
    JOB,
    REJECTS_CHECK,
    TABLES,
    OrdersyncResource,
    OrdersyncTableData,
    OrdersyncTranslator,
    definitions,
    ordersync_assets,
)
from ordersync.sandbox import load_sandbox
from ordersync.sandbox.app import SandboxOptions
from ordersync.sandbox.runner import start_in_thread
from ordersync.store import PUBLISHED, open_store, published_columns, rejects
from tests.registry import API_NAMES
from tests.support import ANCHOR, Running, rows, running

ORDERS = {"frontcore": 120, "eguma": 60, "firespring": 80, "prio": 50}
SOURCES = {"courses": "frontcore", "vouchers": "eguma", "website": "firespring", "tickets": "prio"}


def test_the_sources_here_cover_every_api() -> None:
    """A new API gets a source (and an order count) in this file's project: this fails until it does."""
    assert sorted(SOURCES.values()) == sorted(ORDERS) == API_NAMES


@pytest.fixture
def destination_url(pg_url: str) -> str:
    """The database the assets write into: a fresh database on the suite's real PostgreSQL server."""
    return pg_url


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Running]]:
    with ExitStack() as stack:
        yield {source: stack.enter_context(running(kind, orders=ORDERS[kind], seed=11))
               for source, kind in SOURCES.items()}


def config(url: str, sandboxes: dict[str, Running], **extra: dict[str, Any]) -> dict[str, Any]:
    return {"destination": {"url": url},
            "sources": {name: {**sandbox.settings(), **extra.get(name, {})} for name, sandbox in sandboxes.items()}}


def published(url: str) -> dict[str, int]:
    store = open_store(url)
    try:
        return dict(rows(store, "select source, count(*) from orders group by source"))  # type: ignore[arg-type]
    finally:
        store.close()


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {"/".join(event.asset_key.path): {k: v.value for k, v in event.materialization.metadata.items()}
            for event in result.get_asset_materialization_events()}


def table_counts(url: str) -> dict[str, int]:
    """Rows per ``<source>/<table>`` in the destination."""
    store = open_store(url)
    try:
        return {f"{source}/{table}": count for table in TABLES
                for source, count in rows(store, f"select source, count(*) from {table} group by source")}
    finally:
        store.close()


def run(defs: dg.Definitions, selection: list[str] | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
    """One run of the ordersync job, as Dagster executes it (with the definitions' resource)."""
    keys = [dg.AssetKey.from_user_string(key) for key in selection] if selection else None
    return defs.resolve_job_def(JOB).execute_in_process(asset_selection=keys, **kwargs)


def test_materializing_every_table_syncs_every_source_with_table_metadata(destination_url: str,
                                                                           sandboxes: dict[str, Running]) -> None:
    defs = definitions(config(destination_url, sandboxes))
    result = run(defs)
    assert result.success
    meta = materializations(result)
    assert sorted(meta) == sorted(f"ordersync/{source}/{table}" for source in SOURCES for table in TABLES)
    counts = table_counts(destination_url)
    assert {key.removeprefix("ordersync/"): m["dagster/row_count"] for key, m in meta.items()
            if m["dagster/row_count"]} == counts  # each table's rows of that source, after the sync
    assert counts["courses/orders"] == 120 and counts["vouchers/orders"] == 60 and counts["tickets/orders"] == 50
    assert all(counts[f"{source}/customers"] > 0 for source in SOURCES)  # every source's customers, an asset each
    orders = meta["ordersync/courses/orders"]
    assert (orders["new"], orders["changed"], orders["records"]) == (120, 0, 120)
    assert orders["dagster/table_name"] == "orders"
    assert orders["requests"] >= 1 and orders["seconds"] > 0 and orders["rejected"] == 0
    assert [c.name for c in orders["dagster/column_schema"].columns] == [c.name for c in published_columns(
        PUBLISHED["orders"])]
    assert meta["ordersync/courses/customers"]["new"] == counts["courses/customers"]
    assert meta["ordersync/vouchers/customers"]["cursor"].startswith("orders stream: data up to ")  # e-guma's come
    # with orders; its cursor is Zurich time, said with its zone and in UTC
    assert "Europe/Zurich (" in meta["ordersync/vouchers/customers"]["cursor"]
    for m in meta.values():  # the cursor in words, never a repr or a dict
        assert m["cursor"] and not any(c in m["cursor"] for c in "{}[]'\"")
    checks = {(e.asset_key.path[1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {(source, REJECTS_CHECK): True for source in SOURCES}

    again = run(defs, run_config={"ops": {"sync_courses": {"config": {"full_refresh": True}}}})
    assert again.success
    meta = materializations(again)
    assert (meta["ordersync/courses/orders"]["new"], meta["ordersync/courses/orders"]["unchanged"]) == (0, 120)
    assert all(meta[f"ordersync/{s}/orders"]["new"] == 0 for s in SOURCES) and table_counts(destination_url) == counts

    store = open_store(destination_url)  # a record the engine could not store: the check warns, the run still succeeds
    with store.transaction() as conn:
        conn.execute(rejects.insert().values(source="courses", stream="orders", reject_key="7", record_id="7",
                                             reason="total_minor: 'lots' is not an amount", raw="{}",
                                             seen_at=datetime.now(UTC)))
    store.close()
    check = dg.AssetCheckKey(dg.AssetKey(["ordersync", "courses", "orders"]), REJECTS_CHECK)
    checked = dg.materialize(list(defs.assets or []), resources=defs.resources,  # type: ignore[arg-type]
                             selection=dg.AssetSelection.checks(check))
    assert checked.success and not checked.get_asset_materialization_events()  # the check alone: nothing synced
    [evaluation] = checked.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert evaluation.metadata["reasons"].value == "orders: total_minor: 'lots' is not an amount"


class RawKeys(OrdersyncTranslator):
    """A user's translator: its own keys, group and owners."""

    def get_asset_spec(self, data: OrdersyncTableData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(key=["raw", data.table, data.source], group_name="raw_sales",
                                       owners=["team:finance"])


def test_the_decorator_materializes_one_table_alone_with_a_secret_from_an_env_var(
        destination_url: str, sandboxes: dict[str, Running], monkeypatch: pytest.MonkeyPatch) -> None:
    """@ordersync_assets with a translator; a one-table subset reads only the streams that table needs and
    materializes that table alone; the key is an ``${VAR}`` that the resource fills from a ``dg.EnvVar``."""
    cfg = config(destination_url, sandboxes, courses={"api_key": "${COURSES_KEY}"})
    monkeypatch.delenv("COURSES_KEY", raising=False)

    @ordersync_assets(config=cfg, source="courses", translator=RawKeys())
    def courses(context: dg.AssetExecutionContext, ordersync: OrdersyncResource) -> Any:
        yield from ordersync.sync(context)

    @ordersync_assets(config=cfg, source="vouchers", translator=RawKeys())
    def vouchers(context: dg.AssetExecutionContext, ordersync: OrdersyncResource) -> Any:
        yield from ordersync.sync(context)

    assert sorted(k.to_user_string() for k in courses.keys)[:2] == ["raw/customers/courses", "raw/order_lines/courses"]
    resource = OrdersyncResource(config=cfg, env={"COURSES_KEY": dg.EnvVar("VAULT_COURSES_KEY")})
    defs = dg.Definitions(assets=[courses, vouchers], resources={"ordersync": resource})
    monkeypatch.setenv("VAULT_COURSES_KEY", sandboxes["courses"].settings()["api_key"])
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[dg.AssetKey(["raw", "customers", "courses"])])
    assert result.success and sorted(materializations(result)) == ["raw/customers/courses"]
    assert table_counts(destination_url) == {"courses/customers": materializations(result)[
        "raw/customers/courses"]["dagster/row_count"]}  # the customers stream alone: no order read
    result = job.execute_in_process(asset_selection=[dg.AssetKey(["raw", "order_lines", "vouchers"])])
    assert result.success and sorted(materializations(result)) == ["raw/order_lines/vouchers"]
    assert table_counts(destination_url)["vouchers/orders"] == 60  # written with the lines, not materialized
    key = dg.AssetKey(["raw", "orders", "courses"])
    spec = defs.resolve_assets_def(key).specs_by_key[key]
    assert (spec.group_name, spec.owners, spec.metadata["dagster/table_name"]) == ("raw_sales", ["team:finance"],
                                                                                    "orders")


def test_a_failed_sync_raises_a_failure_that_the_retry_policy_retries(destination_url: str,
                                                                     sandboxes: dict[str, Running]) -> None:
    secret = "not-the-key-31337"
    defs = definitions(config(destination_url, {"courses": sandboxes["courses"]}, courses={"api_key": secret}),
                       retry_policy=dg.RetryPolicy(max_retries=1))
    result = run(defs, raise_on_error=False)
    assert not result.success
    assert [e.event_type_value for e in result.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY",
                                                                                    "STEP_FAILURE")] == \
        ["STEP_UP_FOR_RETRY", "STEP_FAILURE"]  # the user's retry policy ran; ordersync did not forbid it
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    line = failure.user_failure_data.description if failure.user_failure_data else None
    assert line is not None and line.startswith("courses/orders: ") and "Wrong API Key" in line and "\n" not in line
    retried = next(e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")
    error = retried.event_specific_data.error.cause  # type: ignore[union-attr]  # the Failure behind the retry
    # what the UI shows: the same one line (its request carries the attempt's own creation bound, so compare its ends)
    assert error is not None and "courses/orders: " in error.message
    assert error.message.strip().endswith(line.rsplit(" was refused", 1)[-1])
    assert secret not in str(result.all_events)
    assert published(destination_url) == {}


def test_pools_the_job_and_stopped_schedules_are_declared(destination_url: str,
                                                          sandboxes: dict[str, Running]) -> None:
    cfg = config(destination_url, sandboxes, courses={"schedule": "15m"}, tickets={"schedule": "0 */2 * * mon-fri"})
    defs = definitions(cfg)
    repo = defs.get_repository_def()
    by_source = {asset.op.name: asset for asset in repo.assets_defs_by_key.values()}
    assert {name: asset.op.pool for name, asset in by_source.items()} == {f"sync_{s}": s for s in SOURCES}
    assert all(asset.can_subset for asset in by_source.values())
    assert {job.name for job in repo.get_all_jobs()} == {"__ASSET_JOB", "ordersync"}
    schedules = {s.name: (s.cron_schedule, s.job_name, s.default_status, s.execution_timezone)
                 for s in repo.schedule_defs}
    stopped = dg.DefaultScheduleStatus.STOPPED  # nothing syncs until someone turns a schedule on
    assert schedules == {"ordersync_courses": ("*/15 * * * *", "ordersync", stopped, "UTC"),
                         "ordersync_tickets": ("0 */2 * * mon-fri", "ordersync", stopped, "UTC")}
    with dg.build_schedule_context() as context:  # each tick: one run of that source's tables
        tick = repo.get_schedule_def("ordersync_courses").evaluate_tick(context)
    assert [sorted(key.to_user_string() for key in request.asset_selection or []) for request in tick.run_requests
            or []] == [sorted(f"ordersync/courses/{table}" for table in TABLES)]
    policy = repo.assets_defs_by_key[dg.AssetKey(["ordersync", "courses", "orders"])].specs_by_key[
        dg.AssetKey(["ordersync", "courses", "orders"])].freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy) and policy.deadline_cron == "*/15 * * * *"  # type: ignore[attr-defined]
    assert policy.lower_bound_delta == timedelta(minutes=15)  # type: ignore[attr-defined]
    running_ = definitions(cfg, schedules_running=True).get_repository_def().schedule_defs
    assert {s.default_status for s in running_} == {dg.DefaultScheduleStatus.RUNNING}

    with pytest.raises(ConfigError, match=r"\[sources.courses\] schedule: .*'7m' does not divide"):
        definitions(config(destination_url, sandboxes, courses={"schedule": "7m"}))
    clash = {"destination": {"url": destination_url},
             "sources": {"a-b": sandboxes["courses"].settings(), "a_b": sandboxes["courses"].settings()}}
    with pytest.raises(ConfigError, match="'a-b' and 'a_b' get the same Dagster name sync_a_b; rename one"):
        definitions(clash)


RUN_ONE = """
import os, sys, time
from pathlib import Path
import dagster as dg
from ordersync.integrations.dagster import definitions

source, folder, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
defs = definitions(str(folder / "ordersync.toml"))
instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
(folder / f"ready-{name}").touch()
deadline = time.monotonic() + 120
while len(list(folder.glob("ready-*"))) < 2 and time.monotonic() < deadline:  # start both runs together
    time.sleep(0.01)
keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[1] == source]
result = defs.resolve_job_def("ordersync").execute_in_process(instance=instance, asset_selection=keys)
print(sorted("/".join(e.asset_key.path) for e in result.get_asset_materialization_events()))
print([e.message for e in result.all_events if "blocked by limit for pool" in (e.message or "")])
"""


def run_at_once(folder: Path, *sources: str, env: dict[str, str] | None = None) -> list[list[str]]:
    """Materialize the sources in separate processes started together; the output lines of each."""
    script = folder / "run_one.py"
    script.write_text(RUN_ONE)
    procs = [subprocess.Popen([sys.executable, str(script), source, str(folder), str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
             for i, source in enumerate(sources)]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    return [out.splitlines() for out, _err in outputs]


def test_two_sources_materialize_at_once_in_separate_processes_into_one_database(
        destination_url: str, sandboxes: dict[str, Running], tmp_path: Path) -> None:
    write_toml(tmp_path / "ordersync.toml", config(destination_url, sandboxes))
    # COORDINATOR: see the report; two processes creating a fresh SQLite schema race
    open_store(destination_url).close()
    courses, tickets = run_at_once(tmp_path, "courses", "tickets")
    assert courses == [str(sorted(f"ordersync/courses/{table}" for table in TABLES)), "[]"]
    assert tickets == [str(sorted(f"ordersync/tickets/{table}" for table in TABLES)), "[]"]
    assert published(destination_url) == {"courses": 120, "tickets": 50}


class Gate:
    """Holds every API request until opened, and tells when the first one arrived: a sync that is in progress."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entered = threading.Event()
        self.opened = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.entered.set()
            await anyio.to_thread.run_sync(self.opened.wait, 300)
        await self.app(scope, receive, send)


def waiting(info: Any) -> bool:
    """Whether a run queues for the pool's slot while another holds it."""
    return len(info.claimed_slots) == 1 and any(p.run_id not in info.active_run_ids for p in info.pending_steps)


@pytest.mark.timeout(420)
def test_the_readme_pool_limit_keeps_two_runs_of_one_account_apart(destination_url: str, tmp_path: Path) -> None:
    """Two runs of the same source started together, with the README's dagster.yaml: while the first syncs, the
    second waits for the pool slot; then it runs, after the first has finished."""
    home = dagster_home(tmp_path)
    sandbox = load_sandbox("frontcore", SandboxOptions(orders=100, seed=3, api_key="k", anchor=ANCHOR,
                                                       rate_limit=False))
    gate = Gate(sandbox.app())
    server = start_in_thread(gate)
    try:
        settings = {**sandbox.demo_settings(server.base_url), "requests_per_second": 1000, "streams": ["orders"],
                    "timeout": 300}  # the first request waits at the gate
        write_toml(tmp_path / "ordersync.toml", {"destination": {"url": destination_url},
                                                 "sources": {"courses": settings}})
        open_store(destination_url).close()
        with ThreadPoolExecutor(1) as pool:
            runs = pool.submit(run_at_once, tmp_path, "courses", "courses", env={"DAGSTER_HOME": str(home)})
            assert gate.entered.wait(120)  # one run holds the slot and syncs
            instance = dg.DagsterInstance.from_config(str(home))
            deadline = time.monotonic() + 150  # generous: on a loaded machine a Dagster process starts slowly
            while not waiting(info := instance.event_log_storage.get_concurrency_info("courses")):
                assert not runs.done() and time.monotonic() < deadline, f"the second run never waited: {info}"
                time.sleep(0.05)
            gate.opened.set()
            outputs = runs.result(timeout=180)
    finally:
        gate.opened.set()
        server.stop()
    order_tables = ["order_lines", "order_versions", "orders", "payments"]  # the orders stream's; not customers
    assert [lines[0] for lines in outputs] == [str([f"ordersync/courses/{t}" for t in order_tables])] * 2
    # the wait itself was seen above in Dagster's pool state (one slot claimed, the other run's step pending);
    # Dagster's "Step blocked by limit" log line is not written every time, so it is not asserted
    store = open_store(destination_url)
    first, second = rows(store, "select started_at, finished_at, new_rows from _ordersync_runs order by run_id")
    assert first[1] <= second[0] and (first[2], second[2]) == (100, 0)  # one after the other


def write_toml(path: Path, cfg: dict[str, Any]) -> None:
    def value(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    lines = ["[destination]", f"url = {value(cfg['destination']['url'])}"]
    for name, section in cfg["sources"].items():
        lines += ["", f'[sources."{name}"]', *(f"{k} = {value(v)}" for k, v in section.items())]
    path.write_text("\n".join(lines) + "\n")
    api.load_config(path)  # what the processes will read is a valid configuration


def readme_block(first_line: str) -> str:
    """The fenced code block of docs/operations.md (the README's before) whose first line is ``first_line``."""
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for block in text.split("```")[1::2]:
        body = block.split("\n", 1)[1]
        if body.startswith(first_line):
            return body
    raise AssertionError(f"README has no code block starting with {first_line!r}")


def test_the_readme_example_loads_and_materializes(destination_url: str, sandboxes: dict[str, Running],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme_toml = readme_block('[destination]\nurl = "postgresql')
    for var in ("OSLO_FRONTCORE_KEY", "BERGEN_PRIO_ID", "BERGEN_PRIO_SECRET"):
        monkeypatch.delenv(var, raising=False)  # the definitions load without the secrets; only a run needs them
    (tmp_path / "ordersync.toml").write_text(readme_toml)
    example = definitions(str(tmp_path / "ordersync.toml")).get_repository_def()
    assert {s.name: s.cron_schedule for s in example.schedule_defs} == {
        "ordersync_oslo_courses": "*/15 * * * *", "ordersync_bergen_tickets": "0 * * * *"}
    assert {a.op.pool for a in example.assets_defs_by_key.values()} == {"oslo-courses", "bergen-tickets"}

    write_toml(tmp_path / "ordersync.toml", config(destination_url, {"courses": sandboxes["courses"]}))
    (tmp_path / "definitions.py").write_text(readme_block("# definitions.py"))
    monkeypatch.chdir(tmp_path)
    defs = runpy.run_path(str(tmp_path / "definitions.py"))["defs"]
    result = dg.materialize(list(defs.assets or []), resources=defs.resources)  # type: ignore[arg-type]
    assert result.success and published(destination_url) == {"courses": 120}


PROJECT_TOML = """
[project]
name = "shop"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "shop"
"""
PROJECT_DEFINITIONS = """
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""
COMPONENT_YAML = """
type: ordersync.integrations.dagster.OrdersyncComponent
attributes:
  config_path: ordersync.toml
  translation:
    group_name: sales
    key: "sales/{{ source }}/{{ table }}"
"""


def dg_project(folder: Path, toml: dict[str, Any]) -> Path:
    """A ``dg`` project (as ``create-dagster project`` lays it out) whose defs folder holds the ordersync
    component and its ``ordersync.toml``; returns its ``src`` folder."""
    package = folder / "src" / "shop"
    (package / "defs" / "ordersync").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PROJECT_TOML)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(PROJECT_DEFINITIONS)
    (package / "defs" / "ordersync" / "defs.yaml").write_text(COMPONENT_YAML)
    write_toml(package / "defs" / "ordersync" / "ordersync.toml", toml)
    return folder / "src"


def test_the_component_loads_in_a_dg_project_without_secrets_and_materializes_a_table(
        destination_url: str, sandboxes: dict[str, Running], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``dagster definitions validate`` of a dg project in an empty environment (no vendor key: the file's
    ``${COURSES_KEY}`` is read by the run only); then the same project in process, a one-table run."""
    monkeypatch.setenv("COURSES_KEY", sandboxes["courses"].settings()["api_key"])
    toml = config(destination_url, {"courses": sandboxes["courses"], "tickets": sandboxes["tickets"]},
                  courses={"api_key": "${COURSES_KEY}", "schedule": "15m"})
    src = dg_project(tmp_path / "shop", toml)
    empty = {"PATH": os.environ["PATH"],  # and where Python finds the project (and this checkout, if set)
             "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    dagster = str(Path(sys.executable).with_name("dagster"))
    checked = subprocess.run([dagster, "definitions", "validate", "-m", "shop.definitions"], cwd=src, env=empty,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    monkeypatch.syspath_prepend(str(src))
    defs = dg.load_from_defs_folder(project_root=tmp_path / "shop")
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert sorted(specs) == sorted(f"sales/{source}/{table}" for source in ("courses", "tickets") for table in TABLES)
    assert {spec.group_name for spec in specs.values()} == {"sales"}
    schedule_def = defs.resolve_schedule_def("ordersync_courses")
    assert schedule_def.default_status == dg.DefaultScheduleStatus.STOPPED
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[dg.AssetKey(["sales", "tickets", "payments"])])
    assert result.success and list(materializations(result)) == ["sales/tickets/payments"]
    assert published(destination_url) == {"tickets": 50}


def docs_block(first_line: str) -> str:
    """The fenced code block of docs/dagster.md whose first line is ``first_line``."""
    text = (Path(__file__).parents[2] / "docs" / "dagster.md").read_text()
    return next(body for block in text.split("```")[1::2] if (body := block.split("\n", 1)[1]).startswith(first_line))


def test_the_docs_downstream_asset_reads_the_orders_table(destination_url: str, sandboxes: dict[str, Running]) -> None:
    defs = definitions(config(destination_url, {"oslo-courses": sandboxes["courses"]}))
    namespace: dict[str, Any] = {}
    exec(docs_block("# revenue.py"), namespace)
    revenue = namespace["oslo_revenue"]
    result = dg.materialize([*(defs.assets or []), revenue], resources=defs.resources)  # type: ignore[list-item]
    assert result.success
    totals = materializations(result)["oslo_revenue"]
    expected = dict(rows(open_store(destination_url), "select currency, sum(total_minor) from orders where is_paid "
                                                 "group by currency"))
    assert totals == {currency: int(total) for currency, total in expected.items()} and totals


@pytest.mark.timeout(240)
def test_the_webserver_lists_the_assets_and_the_readme_pool_limit_applies(
        destination_url: str, sandboxes: dict[str, Running], tmp_path: Path) -> None:
    """The README's definitions.py and dagster.yaml, served by dagster-webserver headless on a free port."""
    home = dagster_home(tmp_path)
    write_toml(tmp_path / "ordersync.toml", config(destination_url, sandboxes))
    (tmp_path / "definitions.py").write_text(readme_block("# definitions.py"))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
                             "-f", "definitions.py"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        query = {"query": "{ assetNodes { assetKey { path } pools jobNames metadataEntries { label "
                          "... on TableSchemaMetadataEntry { schema { columns { name type } } } } } }"}
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, timeout=10)
                if answer.status_code == 200 and answer.json().get("data", {}).get("assetNodes"):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "dagster-webserver did not answer within 180 s"
            time.sleep(0.5)
        nodes = {"/".join(n["assetKey"]["path"]): n for n in answer.json()["data"]["assetNodes"]}
        assert sorted(nodes) == sorted(f"ordersync/{source}/{table}" for source in SOURCES for table in TABLES)
        schema = {e["label"]: e for e in nodes["ordersync/courses/orders"]["metadataEntries"]}["dagster/column_schema"]
        columns = {c["name"]: c["type"] for c in schema["schema"]["columns"]}
        assert list(columns) == [c.name for c in published_columns(PUBLISHED["orders"])]
        assert (columns["total_minor"], columns["created_at"], columns["raw"]) == (
            "bigint", "timestamp with time zone", "json")
        assert nodes["ordersync/courses/orders"]["pools"] == ["courses"]
        assert "ordersync" in nodes["ordersync/courses/orders"]["jobNames"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dagster_home(tmp_path: Path) -> Path:
    """A Dagster instance folder with the README's dagster.yaml, its storage created (as ``dagster dev`` or the
    daemon do before any run: two runs creating a fresh SQLite instance at once race)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(readme_block("# dagster.yaml"))
    with dg.DagsterInstance.from_config(str(home)) as instance:  # here: a process of its own costs seconds
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1  # the README's, every pool
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
