"""The command line as a user runs it: a real process, a real sandbox, a real database file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import running

KEY = "cli-key-5555"


def ordersync(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "FC_KEY": KEY, **(env or {})})


def config_for(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "ordersync.toml"
    path.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n[sources.courses]\n'
                    f'type = "frontcore"\napi_key = "${{FC_KEY}}"\nbase_url = "{url}/v2"\n'
                    f'requests_per_second = 100\n{extra}')
    return path


def test_sync_status_and_export(tmp_path: Path) -> None:
    with running("frontcore", orders=300, seed=3, api_key=KEY) as fc:
        config_for(tmp_path, fc.url)
        first = ordersync("sync", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "courses" in first.stdout and "300" in first.stdout
        assert "courses/orders: 300 new" in first.stderr  # plain progress lines outside a terminal
        second = ordersync("sync", "courses", cwd=tmp_path)
        assert second.returncode == 0 and "Nothing new since the last run." in second.stdout
    status = ordersync("status", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.splitlines()[0] == "courses (frontcore)", status.stderr
    shown = dict(line.strip().split(": ", 1) for line in status.stdout.splitlines()[1:])
    assert set(shown) == {"orders", "customers"} and "300 orders; no rejects outstanding" in shown["orders"]
    assert "75 customers" in shown["customers"] and "Europe/Oslo (" in shown["orders"]
    assert not any(c in status.stdout for c in "{}[]'\"=") and "max_id" not in status.stdout  # never the state
    as_json = ordersync("status", "--json", cwd=tmp_path)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["version"] == 1
    [source] = json.loads(as_json.stdout)["sources"]
    ago = re.compile(r" \((just now|[^()]* ago)\)")  # the two commands may run a minute apart
    assert {s["stream"]: ago.sub("", s["line"]) for s in source["streams"]} == {
        k: ago.sub("", v) for k, v in shown.items()}  # the same words
    csv_out = tmp_path / "orders.csv"
    assert ordersync("export", "orders", "--format", "csv", "--out", str(csv_out), cwd=tmp_path).returncode == 0
    lines = csv_out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("source,order_id,api") and len(lines) == 301
    jsonl = ordersync("export", "order_lines", "--format", "jsonl", cwd=tmp_path)
    first_line = json.loads(jsonl.stdout.splitlines()[0])
    assert first_line["source"] == "courses" and isinstance(first_line["raw"], dict)
    parquet = tmp_path / "customers.parquet"
    assert ordersync("export", "customers", "--format", "parquet", "--out", str(parquet), cwd=tmp_path).returncode == 0
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).num_rows == 75
    bad = ordersync("export", "invoices", "--format", "csv", cwd=tmp_path)
    assert bad.returncode == 1 and "unknown table 'invoices'" in bad.stderr


def test_errors_are_one_line_without_traceback_and_without_the_key(tmp_path: Path) -> None:
    with running("frontcore", orders=10, api_key="the-right-key") as fc:
        config_for(tmp_path, fc.url)
        result = ordersync("sync", cwd=tmp_path)
    assert result.returncode == 1
    assert "courses/orders" in result.stderr and "Wrong API Key" in result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr + result.stdout

    config_for(tmp_path, "http://127.0.0.1:9", extra="limit = 999\n")
    invalid = ordersync("sync", cwd=tmp_path)
    assert invalid.returncode == 4 and "limit" in invalid.stderr and "250" in invalid.stderr
    assert "Traceback" not in invalid.stderr

    unknown = ordersync("sync", "nosuch", cwd=tmp_path / "..")
    assert unknown.returncode == 4 and "no configuration file" in unknown.stderr


def test_init_writes_a_template_once(tmp_path: Path) -> None:
    assert ordersync("init", cwd=tmp_path).returncode == 0
    assert "[sources.courses]" in (tmp_path / "ordersync.toml").read_text()
    again = ordersync("init", cwd=tmp_path)
    assert again.returncode == 1 and "exists already" in again.stderr


def free_port() -> int:
    """A port the system just gave out (port 0), so that parallel runs never collide on a fixed one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_binds_loopback_and_answers_like_the_api(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ordersync", "serve", "frontcore", "--port", str(port),
                             "--orders", "120", "--seed", "7", "--api-key", "secret"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v2/orders", headers={"X-API-Key": "secret"},
                                     params={"limit": 250, "exported": "true"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert response.status_code == 200 and len(response.json()) == 120
        out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if _has("ss") else ""
        if out:
            assert f"127.0.0.1:{port}" in out and f"0.0.0.0:{port}" not in out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def _has(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None


def test_a_sync_killed_at_any_moment_resumes_and_ends_with_exactly_the_apis_rows(tmp_path: Path) -> None:
    with running("frontcore", orders=600, seed=21, api_key=KEY, faults="latency:40") as fc:  # 30 pages
        config_for(tmp_path, fc.url, extra="limit = 20\nconcurrency = 1\nstreams = [\"orders\"]\n")
        db = tmp_path / "orders.db"
        for kill_after in (60, 240, 400):  # early, half way, late: each run is killed, the next resumes
            proc = subprocess.Popen([sys.executable, "-m", "ordersync", "sync", "-q"], cwd=tmp_path,
                                    env={**os.environ, "FC_KEY": KEY}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while _count(db) < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with sqlite3.connect(db) as conn:  # consistent after every kill: each stored order has all its lines
                broken = conn.execute("""select count(*) from orders o where json_array_length(o.raw, '$.lines') !=
                    (select count(*) from order_lines l where l.source = o.source and l.order_id = o.order_id)""")
                assert broken.fetchone()[0] == 0
        final = ordersync("sync", cwd=tmp_path)
        assert final.returncode == 0, final.stderr
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*), count(distinct order_id) from orders").fetchone() == (600, 600)
            state = json.loads(conn.execute("select state from _ordersync_state").fetchone()[0])
            assert state["run"] is None and state["max_id"] == 27599  # the sandbox's highest order id
            statuses = [s for (s,) in conn.execute("select status from _ordersync_runs order by run_id")]
            assert statuses[-1] == "ok" and "running" not in statuses  # killed runs are marked when the next starts
            assert statuses.count("interrupted") == 3


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("select count(*) from orders").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.timeout(300)
def test_demo_twice_the_second_run_finds_nothing_new(tmp_path: Path) -> None:
    first = ordersync("demo", "--orders", "200", "--db", str(tmp_path / "demo.db"), cwd=tmp_path, timeout=280)
    assert first.returncode == 0, first.stderr
    assert "NOK" in first.stdout and "order lines:" in first.stdout
    assert f"ordersync dashboard --db {tmp_path / 'demo.db'}" in first.stdout.replace("\n", "")
    second = ordersync("demo", "--orders", "200", "--db", str(tmp_path / "demo.db"), cwd=tmp_path, timeout=280)
    assert second.returncode == 0, second.stderr
    assert "Nothing new since the last run." in second.stdout


@pytest.mark.timeout(200)
def test_demo_live_starts_shops_that_keep_selling(tmp_path: Path) -> None:
    """``demo --live RATE``: the demo runs with every sandbox a live shop (``SandboxOptions(live=RATE)``)."""
    from ordersync.demo import running_sandboxes
    from ordersync.sandbox.app import Sandbox

    done = ordersync("demo", "--orders", "20", "--live", "600", "--db", str(tmp_path / "demo.db"), cwd=tmp_path,
                     timeout=180)
    assert done.returncode == 0, done.stderr
    assert "NOK" in done.stdout and "Traceback" not in done.stderr
    started: dict[str, Sandbox] = {}
    with running_sandboxes(tmp_path / "demo.db", 20, 7, started, live=600) as sources:
        assert set(sources) == set(started) and len(started) == 4
        for name, sandbox in started.items():
            assert sandbox.live is not None and sandbox.live.state()["rate_per_minute"] == 600, name
    refused = ordersync("demo", "--live", "inf", "--db", str(tmp_path / "demo.db"), cwd=tmp_path)
    assert refused.returncode == 2 and "--live" in refused.stderr and "Traceback" not in refused.stderr


def test_demo_passes_live_to_its_sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ordersync import demo
    from ordersync.cli import app

    asked: list[float] = []

    def running(*args: object, live: float = 0.0, **kwargs: object) -> object:
        asked.append(live)
        raise demo.StoreError("stopped here")

    monkeypatch.setattr(demo, "running_sandboxes", running)
    CliRunner().invoke(app, ["demo", "--live", "30", "--db", str(tmp_path / "demo.db")])
    assert asked == [30.0]


def test_init_and_export_into_a_missing_folder_are_one_line_without_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ordersync.cli import app
    from ordersync.store import open_store

    runner = CliRunner()
    init = runner.invoke(app, ["init", str(tmp_path / "absent" / "ordersync.toml")])
    assert init.exit_code == 1 and isinstance(init.exception, SystemExit)
    assert f"the folder {tmp_path / 'absent'} does not exist" in init.output and "Traceback" not in init.output
    open_store(f"sqlite:///{tmp_path / 'orders.db'}")
    for fmt in ("csv", "parquet"):
        out = tmp_path / "absent" / f"orders.{fmt}"
        export = runner.invoke(app, ["export", "orders", "--format", fmt, "--out", str(out), "--db",
                                     str(tmp_path / "orders.db")])
        assert export.exit_code == 1 and isinstance(export.exception, SystemExit), export.output
        assert "does not exist" in export.output and not out.parent.exists()
