"""The Dagster integration with the real engine: Dagster's own in-process execution against the four sandboxes,
into a real database; two runs at once in separate processes; pools and schedules; the webserver's GraphQL."""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import anyio
import dagster as dg
import httpx
import pytest

from ordersync import api, apis
from ordersync.errors import ConfigError
from ordersync.integrations.dagster import definitions
from ordersync.sandbox.app import SandboxOptions
from ordersync.sandbox.runner import start_in_thread
from ordersync.store import Store
from tests.support import ANCHOR, Running, rows, running

ORDERS = {"frontcore": 120, "eguma": 60, "firespring": 80, "prio": 50}
SOURCES = {"courses": "frontcore", "vouchers": "eguma", "website": "firespring", "tickets": "prio"}


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
    store = Store(url)
    try:
        return dict(rows(store, "select source, count(*) from orders group by source"))  # type: ignore[arg-type]
    finally:
        store.close()


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {"/".join(event.asset_key.path): {k: v.value for k, v in event.materialization.metadata.items()}
            for event in result.get_asset_materialization_events()}


def test_materializing_the_assets_syncs_every_source_and_records_counts(destination_url: str,
                                                                        sandboxes: dict[str, Running]) -> None:
    defs = definitions(config(destination_url, sandboxes))
    result = dg.materialize(list(defs.assets or []))  # type: ignore[arg-type]
    assert result.success
    meta = materializations(result)
    assert sorted(meta) == ["ordersync/courses/customers", "ordersync/courses/orders", "ordersync/tickets/orders",
                            "ordersync/vouchers/orders", "ordersync/website/orders"]
    counts = published(destination_url)
    assert counts == {source: meta[f"ordersync/{source}/orders"]["new"] for source in SOURCES}
    assert counts["courses"] == 120 and counts["vouchers"] == 60 and counts["tickets"] == 50
    assert 0 < counts["website"] <= 80  # the sandbox spreads its orders over two websites; the source reads one
    orders = meta["ordersync/courses/orders"]
    assert orders["changed"] == 0 and orders["requests"] >= 1 and orders["seconds"] > 0 and orders["records"] == 120
    customers = dict(rows(Store(destination_url), "select source, count(*) from customers group by source"))
    assert meta["ordersync/courses/customers"]["new"] == customers["courses"] > 0

    again = dg.materialize(list(defs.assets or []), selection=dg.AssetSelection.groups("ordersync"))  # type: ignore[arg-type]
    assert again.success and all(m["new"] == 0 for m in materializations(again).values())
    assert published(destination_url) == counts


def test_a_failed_sync_fails_the_run_with_ordersyncs_one_line_message(destination_url: str,
                                                                      sandboxes: dict[str, Running]) -> None:
    secret = "not-the-key-31337"
    defs = definitions(config(destination_url, {"courses": sandboxes["courses"]}, courses={"api_key": secret}))
    result = dg.materialize(list(defs.assets or []), raise_on_error=False)  # type: ignore[arg-type]
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    failure = failures[0].step_failure_data
    line = failure.user_failure_data.description if failure.user_failure_data else None
    assert line is not None and line.startswith("courses/orders: ") and "Wrong API Key" in line and "\n" not in line
    assert failure.error is not None and failure.error.message.strip().endswith(line)  # what the UI shows
    assert secret not in str(result.all_events)
    assert published(destination_url) == {}


def test_pools_the_job_and_schedules_are_declared(destination_url: str, sandboxes: dict[str, Running]) -> None:
    cfg = config(destination_url, sandboxes, courses={"schedule": "15m"}, tickets={"schedule": "0 */2 * * mon-fri"})
    defs = definitions(cfg)
    repo = defs.get_repository_def()
    by_source = {asset.op.name: asset for asset in repo.assets_defs_by_key.values()}
    assert {name: asset.op.pool for name, asset in by_source.items()} == {f"sync_{s}": s for s in SOURCES}
    assert {job.name for job in repo.get_all_jobs()} == {"__ASSET_JOB", "ordersync"}
    schedules = {s.name: (s.cron_schedule, s.job_name, s.default_status, s.execution_timezone)
                 for s in repo.schedule_defs}
    running_ = dg.DefaultScheduleStatus.RUNNING
    assert schedules == {"ordersync_courses": ("*/15 * * * *", "ordersync", running_, "UTC"),
                         "ordersync_tickets": ("0 */2 * * mon-fri", "ordersync", running_, "UTC")}
    with dg.build_schedule_context() as context:  # each tick: one run of that source's assets
        tick = repo.get_schedule_def("ordersync_courses").evaluate_tick(context)
    assert [sorted(key.to_user_string() for key in request.asset_selection or []) for request in tick.run_requests
            or []] == [["ordersync/courses/customers", "ordersync/courses/orders"]]
    stopped = definitions(cfg, schedules_running=False).get_repository_def().schedule_defs
    assert {s.default_status for s in stopped} == {dg.DefaultScheduleStatus.STOPPED}

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
    Store(destination_url).close()  # COORDINATOR: see the report; two processes creating a fresh SQLite schema race
    courses, tickets = run_at_once(tmp_path, "courses", "tickets")
    assert courses == ["['ordersync/courses/customers', 'ordersync/courses/orders']", "[]"]
    assert tickets == ["['ordersync/tickets/orders']", "[]"]
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
    sandbox = apis.get("frontcore").load_sandbox(SandboxOptions(orders=100, seed=3, api_key="k", anchor=ANCHOR,
                                                                  rate_limit=False))
    gate = Gate(sandbox.app())
    server = start_in_thread(gate)
    try:
        settings = {**sandbox.demo_settings(server.base_url), "requests_per_second": 1000, "streams": ["orders"],
                    "timeout": 300}  # the first request waits at the gate
        write_toml(tmp_path / "ordersync.toml", {"destination": {"url": destination_url},
                                                 "sources": {"courses": settings}})
        Store(destination_url).close()
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
    assert [lines[0] for lines in outputs] == ["['ordersync/courses/orders']"] * 2
    # the wait itself was seen above in Dagster's pool state (one slot claimed, the other run's step pending);
    # Dagster's "Step blocked by limit" log line is not written every time, so it is not asserted
    store = Store(destination_url)
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
    """The fenced code block of the README whose first line is ``first_line``."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    for block in text.split("```")[1::2]:
        body = block.split("\n", 1)[1]
        if body.startswith(first_line):
            return body
    raise AssertionError(f"README has no code block starting with {first_line!r}")


def test_the_readme_example_loads_and_materializes(destination_url: str, sandboxes: dict[str, Running],
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme_toml = readme_block('[destination]\nurl = "postgresql')
    for var in ("OSLO_FRONTCORE_KEY", "BERGEN_PRIO_ID", "BERGEN_PRIO_SECRET"):
        monkeypatch.setenv(var, "x")
    (tmp_path / "ordersync.toml").write_text(readme_toml)
    example = definitions(str(tmp_path / "ordersync.toml")).get_repository_def()
    assert {s.name: s.cron_schedule for s in example.schedule_defs} == {
        "ordersync_oslo_courses": "*/15 * * * *", "ordersync_bergen_tickets": "0 * * * *"}
    assert {a.op.pool for a in example.assets_defs_by_key.values()} == {"oslo-courses", "bergen-tickets"}

    write_toml(tmp_path / "ordersync.toml", config(destination_url, {"courses": sandboxes["courses"]}))
    (tmp_path / "definitions.py").write_text(readme_block("# definitions.py"))
    monkeypatch.chdir(tmp_path)
    defs = runpy.run_path(str(tmp_path / "definitions.py"))["defs"]
    result = dg.materialize(list(defs.assets or []))  # type: ignore[arg-type]
    assert result.success and published(destination_url) == {"courses": 120}


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
        query = {"query": "{ assetNodes { assetKey { path } pools jobNames } }"}
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
        assert sorted(nodes) == ["ordersync/courses/customers", "ordersync/courses/orders", "ordersync/tickets/orders",
                                 "ordersync/vouchers/orders", "ordersync/website/orders"]
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
    limits = subprocess.run([sys.executable, "-c", "from dagster import DagsterInstance; "
                             "print(DagsterInstance.get().get_concurrency_config().pool_config.default_pool_limit)"],
                            env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=60)
    assert limits.stdout.strip() == "1", limits.stderr  # the README sets a limit of 1 for every pool
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
