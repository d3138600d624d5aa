"""``ordersync`` processes against a real PostgreSQL server: killed mid-run, side by side, refused, never showing
the password, and one clear line when the server cannot be reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ordersync.store import open_store
from tests.pg_server import PASSWORD, PgServer, free_port
from tests.support import running

KEY = "pg-cli-key-1234"


def ordersync(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "FC_KEY": KEY, "PG_PASSWORD": PASSWORD, **(env or {})})


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ordersync", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FC_KEY": KEY, "PG_PASSWORD": PASSWORD})


def write_config(tmp_path: Path, pg_url: str, sandbox_url: str, sources: tuple[str, ...] = ("courses",),
                 extra: str = "", destination: str = "") -> None:
    url = pg_url.replace(f":{PASSWORD}@", ":${PG_PASSWORD}@")  # the password from the environment, as users do
    text = f'[destination]\nurl = "{url}"\n{destination}\n'
    for name in sources:
        text += (f'[sources.{name}]\ntype = "frontcore"\napi_key = "${{FC_KEY}}"\nbase_url = "{sandbox_url}/v2"\n'
                 f'requests_per_second = 1000\nstreams = ["orders"]\n{extra}\n')
    (tmp_path / "ordersync.toml").write_text(text)


def query(pg_url: str, sql: str) -> list[tuple[object, ...]]:
    try:
        with psycopg.connect(pg_url, connect_timeout=5) as conn:
            return list(conn.execute(sql).fetchall())
    except psycopg.errors.UndefinedTable:
        return [(0,)]


def wait_for(pg_url: str, sql: str, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while query(pg_url, sql)[0][0] < at_least:  # type: ignore[operator]
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)


def test_a_sync_killed_mid_run_resumes_with_exact_counts(tmp_path: Path, pg_url: str) -> None:
    with running("frontcore", orders=600, seed=21, api_key=KEY, faults="latency:30") as fc:
        write_config(tmp_path, pg_url, fc.url, extra="limit = 20\nconcurrency = 1\n")
        for kill_after in (60, 300):
            proc = start("sync", "-q", cwd=tmp_path)
            wait_for(pg_url, "SELECT count(*) FROM orders", kill_after, proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            broken = query(pg_url, """SELECT count(*) FROM orders o WHERE json_array_length(o.raw->'lines') !=
                (SELECT count(*) FROM order_lines l WHERE l.source = o.source AND l.order_id = o.order_id)""")
            assert broken == [(0,)]  # consistent after each kill: each stored order has all its lines
        final = ordersync("sync", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert query(pg_url, "SELECT count(*), count(DISTINCT order_id) FROM orders") == [(600, 600)]
    # no run left half way (the state's key is 'pending' before the engine rework, 'run' after it)
    assert query(pg_url, "SELECT state::jsonb->>'pending' IS NULL AND state::jsonb->>'run' IS NULL "
                         "FROM _ordersync_state") == [(True,)]
    statuses = [s for (s,) in query(pg_url, "SELECT status FROM _ordersync_runs ORDER BY run_id")]
    assert statuses == ["interrupted", "interrupted", "ok"]


def test_two_sources_at_once_and_the_same_source_twice(tmp_path: Path, pg_url: str) -> None:
    # 10 pages of 200 ms and what a run asks besides: each sync runs some 7 s, the third is refused within 2
    with running("frontcore", orders=200, seed=5, api_key=KEY, faults="latency:200") as fc:
        write_config(tmp_path, pg_url, fc.url, sources=("left", "right"), extra="limit = 20\nconcurrency = 1\n",
                     destination="lock_wait_seconds = 0.5\n")
        # the tables exist before the two syncs start (status only reads, it creates nothing)
        open_store(pg_url).close()
        left, right = start("sync", "left", "-q", cwd=tmp_path), start("sync", "right", "-q", cwd=tmp_path)
        wait_for(pg_url, "SELECT count(*) FROM _ordersync_runs WHERE status = 'running'", 2, left)  # side by side
        second = ordersync("sync", "left", cwd=tmp_path)
        assert second.returncode == 1
        [line] = second.stderr.strip().splitlines()
        assert f"source 'left' is being synced by another ordersync (pid {left.pid} on" in line
        assert left.wait(120) == 0 and right.wait(120) == 0, (left.stderr, right.stderr)
    assert query(pg_url, "SELECT source, count(*) FROM orders GROUP BY source ORDER BY source") == [
        ("left", 200), ("right", 200)]
    assert query(pg_url, "SELECT count(*) FROM _ordersync_runs WHERE status = 'ok'") == [(2,)]


def test_the_password_is_never_shown_or_stored(tmp_path: Path, pg_url: str) -> None:
    with running("frontcore", orders=30, seed=5, api_key="another-key") as fc:
        write_config(tmp_path, pg_url, fc.url)
        failed = ordersync("-v", "sync", cwd=tmp_path)  # a failing sync: its error is stored and shown
    assert failed.returncode == 1 and "courses/orders" in failed.stderr
    out = tmp_path / "orders.csv"
    outputs = [failed, ordersync("status", cwd=tmp_path),
               ordersync("export", "orders", "--out", str(out), cwd=tmp_path),
               ordersync("demo", "--orders", "20", "--db", pg_url, cwd=tmp_path)]
    assert all(o.returncode in (0, 1) for o in outputs)
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    assert "postgresql://ordersync:***@127.0.0.1" in outputs[-1].stdout  # demo names the database, not its password
    for result in outputs:
        assert PASSWORD not in result.stdout + result.stderr
    stored = query(pg_url, "SELECT string_agg(coalesce(error, '') || status, ' ') FROM _ordersync_runs")[0][0]
    state = query(pg_url, "SELECT string_agg(state, ' ') FROM _ordersync_state")[0][0]
    assert PASSWORD not in str(stored) + str(state)


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong password", "wrong password for user 'ordersync': check the password"),
    ("host down", "nothing answers there: check the host and port"),
    ("database missing", "the database 'nosuch' does not exist: create it (createdb nosuch)"),
])
def test_a_connection_failure_is_one_line_naming_host_and_what_to_check(
        case: str, expected: str, tmp_path: Path, pg_server: PgServer) -> None:
    port = free_port() if case == "host down" else pg_server.port
    database = "nosuch" if case == "database missing" else "postgres"
    secret = "wrong-secret-99" if case == "wrong password" else PASSWORD
    url = f"postgresql://ordersync:{secret}@127.0.0.1:{port}/{database}"
    (tmp_path / "ordersync.toml").write_text(f'[destination]\nurl = "{url}"\n\n[sources.c]\ntype = "frontcore"\n'
                                             'api_key = "k"\nbase_url = "http://127.0.0.1:9/v2"\n')
    for command in (("sync",), ("status",), ("export", "orders")):
        result = ordersync(*command, cwd=tmp_path)
        assert result.returncode == 1
        [line] = result.stderr.strip().splitlines()
        assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in line and expected in line, line
        assert secret not in line and "Traceback" not in line
