"""Two ``ordersync sync`` processes of different sources writing one SQLite file at the same time: each waits for
the other's page transaction instead of failing with "database is locked"."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import running

KEY = "sqlite-two-processes"


def test_two_sources_sync_into_one_sqlite_file_at_once(tmp_path: Path) -> None:
    with running("frontcore", orders=400, seed=8, api_key=KEY) as fc:
        text = f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n'
        for name in ("left", "right"):
            text += (f'[sources.{name}]\ntype = "frontcore"\napi_key = "{KEY}"\nbase_url = "{fc.url}/v2"\n'
                     'requests_per_second = 1000\nstreams = ["orders"]\nlimit = 5\n')
        (tmp_path / "ordersync.toml").write_text(text)
        command = [sys.executable, "-m", "ordersync", "sync", "-q"]
        procs = [subprocess.Popen([*command, name], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=dict(os.environ)) for name in ("left", "right")]
        outcomes = [(p.wait(240), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    with sqlite3.connect(tmp_path / "orders.db") as conn:
        counts = conn.execute("SELECT source, count(*) FROM orders GROUP BY source ORDER BY source").fetchall()
    assert counts == [("left", 400), ("right", 400)]
