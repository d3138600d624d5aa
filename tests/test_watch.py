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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordersync import api
from tests.store.test_writer import alive, wait_for, writers_of
from tests.support import running
from tests.test_cli import KEY, _count, config_for, ordersync

ROUND = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ round (\d+): ")
CLOSING = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ stopped after ([\d,]+ rounds?) in [^:]+: .*$", re.M)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ordersync", "sync", *args], cwd=tmp_path, text=True,
                            env={**os.environ, "FC_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_lets_the_page_being_written_commit_then_exits_0(tmp_path: Path) -> None:
    # 20 pages of orders at 40 ms: SIGTERM after the third, with 17 still to read
    with running("frontcore", orders=400, seed=21, api_key=KEY, faults="latency:40") as fc:
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
        assert CLOSING.search(err) and "Z stopped after 1 round in " in err and "; no failures" in err, err
        with sqlite3.connect(db) as conn:
            stored = conn.execute("select count(*) from orders").fetchone()[0]
            assert 60 <= stored < 400  # the pages written commit (whole slices: the next run stores each order once)
            assert conn.execute("select stream, status from _ordersync_runs").fetchall() == [("orders", "interrupted")]
        final = ordersync("sync", "-q", cwd=tmp_path)  # the next run resumes and finishes the job
        assert final.returncode == 0, final.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*), count(distinct order_id) from orders").fetchone() == (400, 400)


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
    closing = CLOSING.search(err)  # the whole watch in one line: every round, the orders of all of them
    assert closing and closing.group(1) == f"{len(lines)} rounds", err
    assert "orders 30 new 0 changed " in closing.group(0) and "customers 7 new 0 changed, " in closing.group(0)
    assert closing.group(0).endswith(" round)") or closing.group(0).endswith(" rounds)")
    assert "; failed: broken (" in closing.group(0) and "courses" not in closing.group(0)


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


def test_a_bounded_watch_ends_after_its_rounds_with_a_closing_line(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ordersync.cli import app

    monkeypatch.setenv("FC_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    with running("frontcore", orders=30, api_key=KEY) as fc:
        config_for(tmp_path, fc.url)
        result = CliRunner().invoke(app, ["sync", "--every", "1s", "--rounds", "2", "-q"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [int(ROUND.match(line).group(1)) for line in lines] == [1, 2], lines  # type: ignore[union-attr]
    assert "; next at " in lines[0] and lines[1].endswith("; stopped")
    closing = CLOSING.search(result.stderr)
    assert closing and closing.group(1) == "2 rounds", result.stderr
    assert "orders 30 new 0 changed " in closing.group(0) and "customers 7 new 0 changed, " in closing.group(0)
    assert closing.group(0).endswith("; no failures")
    alone = CliRunner().invoke(app, ["sync", "--rounds", "2"])
    assert alone.exit_code == 2 and "--rounds goes with --every" in alone.output


def test_the_closing_line_sums_every_round_in_the_round_lines_words() -> None:
    from ordersync.cli import closing_line, tick_line

    def tick(number: int, failed: tuple[str, ...] = (), error: str | None = None) -> api.Tick:
        streams = [api.StreamResult("shop", "orders", orders=api.Counts(3, 1, 2), customers=api.Counts(1, 0, 0),
                                    requests=4)]
        streams += [api.StreamResult(name, "orders", error="HTTP 500") for name in failed]
        return api.Tick(number, datetime(2026, 10, 1, tzinfo=UTC), api.SyncResult(streams, 1.0), {}, None, error)

    summary = api.WatchSummary()
    for t in (tick(1, ("broken",)), tick(2, ("broken", "flaky")), tick(3, error="database is locked")):
        summary = summary.add(t)
    summary = replace(summary, seconds=3725.0)
    line = closing_line(summary, datetime(2026, 10, 1, 9, 0, 5, tzinfo=UTC))
    assert line == ("2026-10-01 09:00:05Z stopped after 3 rounds in 1h 02m: orders 9 new 3 changed 6 unchanged, "
                    "customers 3 new 0 changed, 12 requests; failed: the destination (1 round), broken (2 rounds), "
                    "flaky (1 round)")
    words = tick_line(tick(1)).split(": ", 1)[1]
    assert words.startswith("1 source(s), orders 3 new 1 changed 2 unchanged, customers 1 new 0 changed, 4 requests")
    once = closing_line(replace(api.WatchSummary().add(tick(1)), seconds=4.25), datetime(2026, 10, 1, tzinfo=UTC))
    assert once.endswith("stopped after 1 round in 4.2s: orders 3 new 1 changed 2 unchanged, customers 1 new "
                         "0 changed, 4 requests; no failures")
