"""PostgreSQL that stops answering or refuses us: every wait has an end, and the user reads one line naming the
server and what to check. Each test starts a server of its own: it is frozen (SIGSTOP, as a network partition
looks from here), filled up to its connection limit, or shut down."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ordersync import config
from ordersync.apis.base import Rows
from ordersync.errors import ConfigError, StoreError
from ordersync.store import open_store
from ordersync.store.writer import WriterProcess
from tests.pg_server import PgServer, _as_postgres, _run
from tests.store.test_postgres_cli import ordersync, start, write_config
from tests.store.test_writer import alive, wait_for, writers_of
from tests.support import running

KEY = "pg-cli-key-1234"  # test_postgres_cli's helpers export it as FC_KEY


def postmaster_of(server: PgServer) -> int:
    return int((server.folder / "data" / "postmaster.pid").read_text().split()[0])


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
            os.kill(pid, signum)


@contextlib.contextmanager
def frozen(server: PgServer) -> Iterator[None]:
    """The whole server stopped (SIGSTOP: the postmaster first, so that it starts no one, then every process it
    started), as if the network to it were cut; continued (SIGCONT) at the end, whatever happened."""
    postmaster = postmaster_of(server)
    signal_all([postmaster], signal.SIGSTOP)
    try:
        signal_all(children_of(postmaster), signal.SIGSTOP)
        yield
    finally:
        signal_all([*children_of(postmaster), postmaster], signal.SIGCONT)


def orders_in(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("select count(*) from orders").fetchone()[0])  # type: ignore[index]


def test_a_frozen_server_fails_the_sync_in_one_line_within_the_bound(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync holds the source's lock and has pages in flight when the server freezes: it ends, failed, within
    the bound (statement_timeout_seconds 2 and a grace of 1 s: each exchange waits at most 3 s), with one line
    naming the server and what to check; once the server runs again, the next sync ends with every order exactly
    once."""
    monkeypatch.setenv("ORDERSYNC_PG_GRACE_SECONDS", "1")  # the sync and its writer process (10 s by default)
    with PgServer.start() as server, running("frontcore", orders=600, seed=8, api_key=KEY,
                                             faults="latency:30") as fc:
        url = server.new_database()
        write_config(tmp_path, url, fc.url, extra="limit = 20\nconcurrency = 1\n",
                     destination="connect_timeout_seconds = 2\nstatement_timeout_seconds = 2\n")
        proc = start("sync", cwd=tmp_path)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                if orders_in(url) >= 100:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        with frozen(server):
            began = time.monotonic()
            try:
                _out, err = proc.communicate(timeout=100)  # before pytest's timeout: SIGCONT runs
            finally:
                proc.kill()
            took = time.monotonic() - began
        assert proc.returncode not in (0, None), err
        lines = [line for line in err.splitlines() if line.startswith("error:")]  # the others are progress
        assert len(lines) == 1 and "Traceback" not in err, err
        assert f"127.0.0.1:{server.port}" in lines[0] and "frozen or unreachable" in lines[0], lines[0]
        assert "did not answer for 3s (statement_timeout_seconds 2 + 1)" in lines[0], lines[0]
        print(f"failed {took:.1f}s after the server froze")
        assert "pg-test-secret" not in err
        assert took < 120, took  # generous: two exchanges of 3 s, the writer's and the run log's
        again = ordersync("sync", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert orders_in(url) == 600


@pytest.fixture
def full_server() -> Iterator[PgServer]:
    with PgServer.start(settings="-c max_connections=6 -c superuser_reserved_connections=0") as server:
        yield server


@pytest.mark.parametrize("refusal", ["full", "shutting down"])
def test_a_server_that_refuses_the_writer_is_one_line_with_the_right_advice(
        refusal: str, full_server: PgServer, capfd: pytest.CaptureFixture[str]) -> None:
    """The writer process's own connection is refused (every connection slot taken; the server shutting down
    while ours stays open): the page fails with one line naming the cause, and the writer prints nothing."""
    url = full_server.new_database()
    store = open_store(url)
    held: list[psycopg.Connection[object]] = []
    try:
        if refusal == "full":
            with contextlib.suppress(psycopg.OperationalError):
                while len(held) < 10:
                    held.append(psycopg.connect(url))
            assert 0 < len(held) < 10
        else:  # a smart shutdown waits for the open sessions (ours) and refuses new ones
            _run(_as_postgres([str(full_server.bin / "pg_ctl"), "-D", str(full_server.folder / "data"), "-m",
                               "smart", "-W", "stop"]))
            time.sleep(0.5)
        store.start_writer()
        with pytest.raises(StoreError) as caught:
            store.write_page("shop", "frontcore", "orders", Rows(), {"max_id": 1})
    finally:
        for conn in held:
            conn.close()
        store.close()
    message = str(caught.value)
    assert "\n" not in message and f"127.0.0.1:{full_server.port}" in message
    assert ("no free connection" if refusal == "full" else "shutting down") in message, message
    assert "the page was not stored" not in message and "pg-test-secret" not in message
    assert "Traceback" not in capfd.readouterr().err


def test_the_sync_process_waits_for_its_writer_at_most_the_bound(tmp_path: Path) -> None:
    """A writer process that stops answering (stopped here with SIGSTOP) fails the pending page with the store's
    line once ``answer_wait`` has passed with no answer, and is stopped for good."""
    store = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
    writer = WriterProcess(store.url, store.options, store.describe(), answer_wait=2, stalled="stalled: check it")
    try:
        assert writer.submit("count", "orders").result(timeout=60) == 0  # it runs
        [pid] = writers_of(os.getpid())
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(StoreError, match="^stalled: check it$"):
            writer.submit("count", "orders").result(timeout=60)
        assert 2 <= time.monotonic() - began < 30
        assert wait_for(lambda: not alive(pid))
    finally:
        writer.close()
        store.close()


def test_the_bounds_are_settings_checked_when_the_configuration_is_read() -> None:
    source = {"shop": {"type": "frontcore", "api_key": "k", "base_url": "http://x/v2"}}
    cfg = config.parse({"destination": {"url": "postgresql://u@h/db", "statement_timeout_seconds": 2,
                                        "lock_timeout_seconds": 5}, "sources": source})
    assert cfg.store_options() == {"schema": None, "lock_wait": 30.0, "statement_timeout": 2.0, "lock_timeout": 5.0}
    for destination, says in (({"url": "sqlite:///o.db", "connect_timeout_seconds": 3}, "PostgreSQL urls only"),
                              ({"url": "postgresql://u@h/db", "statement_timeout_seconds": 0}, "(1 to 86400)"),
                              ({"url": "postgresql://u@h/db", "lock_timeout_seconds": "1m"}, "number of seconds")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            config.parse({"destination": destination, "sources": source})


def test_the_grace_beyond_the_statement_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORDERSYNC_PG_GRACE_SECONDS (what the frozen-server test sets) replaces the 10 s; a bad value is one line."""
    from ordersync.store.bounds import PgBounds

    assert PgBounds(statement=2).exchange_wait == 12
    monkeypatch.setenv("ORDERSYNC_PG_GRACE_SECONDS", "1.5")
    assert PgBounds(statement=2).exchange_wait == 3.5 and "(statement_timeout_seconds 2 + 1.5)" in PgBounds(
        statement=2).frozen("h:5432")
    for bad in ("soon", "-1"):
        monkeypatch.setenv("ORDERSYNC_PG_GRACE_SECONDS", bad)
        with pytest.raises(ConfigError, match=r"^ORDERSYNC_PG_GRACE_SECONDS must be a number of seconds \(0 to "):
            PgBounds()
