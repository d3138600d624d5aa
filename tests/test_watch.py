"""``ordersync sync --every``: a real process against a real sandbox, stopped by SIGTERM and by Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from ordersync import api
from tests.store.test_writer import alive, wait_for, writers_of
from tests.support import running
from tests.test_cli import KEY, _count, config_for, ordersync

ROUND = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ round (\d+): ")


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ordersync", "sync", *args], cwd=tmp_path, text=True,
                            env={**os.environ, "FC_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_lets_the_page_being_written_commit_then_exits_0(tmp_path: Path) -> None:
    with running("frontcore", orders=900, seed=21, api_key=KEY, faults="latency:40") as fc:
        config_for(tmp_path, fc.url, extra="limit = 20\nconcurrency = 1\n")
        db = tmp_path / "orders.db"
        proc = start(tmp_path, "--every", "1h")
        deadline = time.monotonic() + 60
        while _count(db) < 60 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "SIGTERM: stopping after the page being written" in err and "Traceback" not in err
        lines = out.splitlines()
        assert len(lines) == 1 and ROUND.match(lines[0]) and lines[0].endswith("; stopped"), out
        with sqlite3.connect(db) as conn:
            stored = conn.execute("select count(*) from orders").fetchone()[0]
            assert 60 <= stored < 900  # the pages written commit (whole slices: the next run stores each order once)
            assert conn.execute("select stream, status from _ordersync_runs").fetchall() == [("orders", "interrupted")]
        final = ordersync("sync", "-q", cwd=tmp_path)  # the next run resumes and finishes the job
        assert final.returncode == 0, final.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*), count(distinct order_id) from orders").fetchone() == (900, 900)


def test_one_line_per_round_a_failing_source_waits_and_ctrl_c_exits_0(tmp_path: Path) -> None:
    with running("frontcore", orders=30, api_key=KEY) as fc:
        config_for(tmp_path, fc.url, extra=f'\n[sources.broken]\ntype = "frontcore"\napi_key = "broken-key-123"\n'
                                           f'base_url = "{fc.url}/v2"\nstreams = ["orders"]\n')
        proc = start(tmp_path, "--every", "1s")
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines += rest.splitlines()
    assert all(ROUND.match(line) for line in lines), lines
    assert [int(ROUND.match(line).group(1)) for line in lines] == list(range(1, len(lines) + 1))  # type: ignore[union-attr]
    assert "round 1: 2 source(s), orders 30 new 0 changed 0 unchanged, customers 7 new 0 changed, " in lines[0]
    assert "; failed: broken; waiting: broken (retry in 1 round); next at " in lines[0]
    assert "round 2: 2 source(s), orders 0 new" in lines[1] and "waiting: broken (retry in 2 rounds)" in lines[1]
    assert "error: broken/orders: " in err and "Wrong API Key" in err and "broken-key-123" not in err
    assert "Traceback" not in err


def test_a_killed_writer_is_replaced_and_the_next_round_stores(tmp_path: Path) -> None:
    """The writer process killed (as the kernel's OOM killer does) under a watch: the round it dies in may fail,
    the next one starts a new writer and stores the orders created meanwhile; the watch never needs a restart."""
    stop = threading.Event()
    ticks: list[api.Tick] = []
    killed: list[int] = []

    def on_tick(tick: api.Tick) -> None:
        ticks.append(tick)
        if tick.number == 1:
            [pid] = writers_of(os.getpid())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            assert wait_for(lambda: not alive(pid))
            fc.control("POST", "orders", {})
        if tick.number == 3:
            stop.set()

    db = tmp_path / "orders.db"
    with running("frontcore", orders=20, api_key=KEY) as fc:
        settings = fc.settings(streams=["orders"])
        api.watch({"destination": {"url": f"sqlite:///{db}"}, "sources": {"courses": settings}}, every=0, stop=stop,
                  on_tick=on_tick)
    assert killed and len(ticks) == 3
    assert [(t.error, [(s.error, s.orders.new) for s in t.result.streams]) for t in ticks] == [
        (None, [(None, 20)]), (None, [(None, 1)]), (None, [(None, 0)])]
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from orders").fetchone()[0] == 21
