"""One sync per source at a time, across processes: a second one waits, then refuses naming the holder; a killed
holder's lock is gone at once; DuckDB's one-writing-process rule is said plainly."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ordersync.errors import StoreError
from ordersync.store import LockBusy, WriteResult, open_store

HOLD = """
import sys
from ordersync.store import open_store
store = open_store(sys.argv[1])
store.lock(sys.argv[2])
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def holder(url: str, source: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the lock of ``source`` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url, source], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked", proc.stderr
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("dest_url", ["sqlite", "postgresql"], indirect=True)
def test_a_second_sync_of_a_source_waits_then_names_the_holder(dest_url: str) -> None:
    open_store(dest_url).close()  # the tables exist before two processes meet
    with holder(dest_url, "shop") as proc:
        store = open_store(dest_url, lock_wait=0.3)
        with pytest.raises(LockBusy) as refused:
            store.lock("shop")
        message = str(refused.value)
        assert "source 'shop' is being synced by another ordersync" in message and f"pid {proc.pid}" in message
        assert "\n" not in message and "pg-test-secret" not in message
        store.lock("other")  # another source is free meanwhile
        store.unlock("other")
        proc.send_signal(signal.SIGKILL)  # killed, never released: the OS or the server drops the lock
        proc.wait()
        patient = open_store(dest_url, lock_wait=10)
        patient.lock("shop")
        patient.close()
        store.close()


def test_duckdb_says_a_second_process_cannot_write_the_file(tmp_path: Path) -> None:
    dest_url = f"duckdb:///{tmp_path / 'orders.duckdb'}"
    open_store(dest_url).close()
    with holder(dest_url, "shop") as proc:
        with pytest.raises(StoreError) as refused:
            open_store(dest_url, lock_wait=0.3)
        message = str(refused.value)
        assert f"open in process {proc.pid}" in message and "DuckDB lets one process write a file at a time" in message
    store = open_store(dest_url, lock_wait=10)  # the holder was killed: the file is free again
    store.close()


def test_locked_holds_every_named_source_for_the_block(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    store, other = open_store(url), open_store(url, lock_wait=0)
    with store.locked(["a", "b"]):
        run_id = store.start_run("a", "orders")  # a run inside the block takes the lock again (it counts)
        store.finish_run(run_id, "ok", WriteResult(), 1)
        for source in ("a", "b"):
            with pytest.raises(LockBusy, match=f"source '{source}'"):
                other.lock(source)
    other.lock("a")
    other.close()
    store.close()
