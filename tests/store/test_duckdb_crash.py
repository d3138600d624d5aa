"""DuckDB against a killed sync: a real ``ordersync sync`` process into a DuckDB file, killed (SIGKILL) while it
writes, leaves whole pages with the state that covers them, and the next run ends with every order exactly once.

DuckDB lets one process open a file, so the moment to kill is not read from the database (as SQLite's test does)
but from the sandbox: after a number of list requests answered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from ordersync.sandbox.app import SandboxOptions
from ordersync.sandbox.runner import start_in_thread
from tests.support import ANCHOR, load_sandbox

KEY = "duck-crash-key"
ORDERS = 600


class CountingLists:
    """An ASGI app that counts the order lists it has been asked for, then serves them from ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lists = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/orders"):
            self.lists += 1
        await self.app(scope, receive, send)


def sync_process(tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ordersync", "sync", "-q"], cwd=tmp_path,
                            env={**os.environ, "FC_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def whole_pages(db: Path) -> tuple[int, int]:
    """(orders stored, orders whose lines are not all stored): read once the killed process is gone."""
    with duckdb.connect(str(db), read_only=True) as conn:
        stored = conn.execute("SELECT count(*) FROM orders").fetchone()
        broken = conn.execute("""SELECT count(*) FROM orders o WHERE json_array_length(o.raw, '$.lines') !=
            (SELECT count(*) FROM order_lines l WHERE l.source = o.source AND l.order_id = o.order_id)""").fetchone()
    assert stored is not None and broken is not None
    return int(stored[0]), int(broken[0])


def test_a_duckdb_sync_killed_while_writing_resumes_and_ends_with_exactly_the_apis_orders(tmp_path: Path) -> None:
    sandbox = load_sandbox("frontcore", SandboxOptions(orders=ORDERS, seed=21, api_key=KEY, faults="latency:50",
                                                       anchor=ANCHOR, rate_limit=False))
    counting = CountingLists(sandbox.app())
    server = start_in_thread(counting)
    db = tmp_path / "orders.duckdb"
    (tmp_path / "ordersync.toml").write_text(
        f'[destination]\nurl = "duckdb:///{db}"\n\n[sources.courses]\ntype = "frontcore"\napi_key = "${{FC_KEY}}"\n'
        f'base_url = "{server.base_url}/v2"\nrequests_per_second = 1000\nlimit = 20\nconcurrency = 1\n'
        'streams = ["orders"]\n')
    try:
        stored = []
        for kill_after in (15, 35):  # list requests answered (of about 45): within a batch or its commit
            proc = sync_process(tmp_path)
            start, deadline = counting.lists, time.monotonic() + 60
            while counting.lists - start < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            count, broken = whole_pages(db)  # DuckDB replays its log up to the last whole commit
            assert broken == 0
            stored.append(count)
        assert stored[0] <= stored[1] and 0 < stored[1] < ORDERS  # each kill kept what was committed before it
        final = subprocess.run([sys.executable, "-m", "ordersync", "sync", "-q"], cwd=tmp_path, capture_output=True,
                               text=True, timeout=120, env={**os.environ, "FC_KEY": KEY})
        assert final.returncode == 0, final.stderr
    finally:
        server.stop()
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT order_id) FROM orders").fetchone() == (ORDERS, ORDERS)
        assert conn.execute("SELECT count(*) FROM order_versions").fetchone() == (ORDERS,)  # one version each
        state = json.loads(conn.execute("SELECT state FROM _ordersync_state").fetchone()[0])  # type: ignore[index]
        statuses = [s for (s,) in conn.execute("SELECT status FROM _ordersync_runs ORDER BY run_id").fetchall()]
    assert state["run"] is None and statuses == ["interrupted", "interrupted", "ok"]
