"""SQLite's log is copied back into the database beside the writer (ordersync.store.checkpoint), and stays small."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ordersync.store import Store, open_store, sqlite
from tests.store.test_write import Page
from tests.support import running

PAGES, ORDERS = 30, 200


def page_of(orders: int) -> Page:
    """Orders with random ids (as e-guma's): each page changes index pages all over the file."""
    rows = []
    for _ in range(orders):
        order_id = str(uuid.uuid4())
        rows.append({"order_id": order_id, "order_number": order_id[:8], "status": "paid", "currency": "CHF",
                     "total_minor": 1500, "customer_email": f"{order_id}@example.com",
                     "raw": {"id": order_id, "note": "x" * 800}})
    return Page(orders=rows)


def write_pages(store: Store) -> None:
    for n in range(PAGES):
        store.write_page("shop", "eguma", "orders", page_of(ORDERS), {"page": n})


def orders_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM orders").fetchone()[0])


def test_the_log_is_copied_back_beside_a_writer_that_never_checkpoints(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's own checkpoint out of reach: the database file itself must still grow with the pages while
    they are written (in WAL mode only a checkpoint writes to it), copied there by the thread beside the writer."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_FRAMES", 100)
    monkeypatch.setattr(sqlite, "PRAGMAS", (*sqlite.PRAGMAS, "wal_autocheckpoint=1000000"))
    path = tmp_path / "orders.db"
    store = open_store(f"sqlite:///{path}")
    try:
        written = path.stat().st_size
        write_pages(store)
        assert path.stat().st_size - written > PAGES * ORDERS * 800 / 2  # at least half the records' bytes
    finally:
        store.close()
    assert orders_in(path) == PAGES * ORDERS


def test_when_a_sync_ends_the_database_file_alone_holds_everything(tmp_path: Path) -> None:
    """The process exits without closing its connections (SQLite's own last checkpoint never runs): the log must
    be copied back and emptied by then, so that a copy of the file is complete and no log is left on disk."""
    path = tmp_path / "orders.db"
    store = open_store(f"sqlite:///{path}")
    try:
        write_pages(store)
        store._checkpointer.close()  # type: ignore[attr-defined]  # what closing the store does first
        log = Path(f"{path}-wal")
        assert not log.exists() or log.stat().st_size == 0
        shutil.copy(path, tmp_path / "file-alone.db")  # the file as it is, without the log
    finally:
        store.close()
    assert orders_in(tmp_path / "file-alone.db") == PAGES * ORDERS


def test_the_log_stays_small_during_a_long_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log starts over every few checkpoints instead of holding every page of the sync (the settings scaled
    down by 100, from 10,000 pages of log to 100)."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_FRAMES", sqlite.CHECKPOINT_FRAMES // 100)
    monkeypatch.setattr(sqlite, "PRAGMAS", tuple(
        f"wal_autocheckpoint={int(p.split('=')[1]) // 100}" if p.startswith("wal_autocheckpoint=") else p
        for p in sqlite.PRAGMAS))
    path = tmp_path / "orders.db"
    store = open_store(f"sqlite:///{path}")
    try:
        write_pages(store)
        log = Path(f"{path}-wal").stat().st_size
        assert log < path.stat().st_size, (log, path.stat().st_size)  # without starting over: three times it
    finally:
        store.close()
    assert orders_in(path) == PAGES * ORDERS


def test_after_ordersync_sync_beside_an_open_reader_a_copy_of_the_database_file_alone_has_every_order(
        tmp_path: Path) -> None:
    """As a user runs it: the command line, its writer process, the sandbox over a socket, while another program
    (a dashboard) has the database open, so that the sync's connections are not the last to close it and SQLite's
    own checkpoint at the last close does not run. Then the file is copied without its log (as a backup would)."""
    key = "checkpoint-cli"
    path = tmp_path / "orders.db"
    reader = sqlite3.connect(path)  # open, idle: as a dashboard between its queries
    try:
        reader.execute("PRAGMA journal_mode=WAL")  # what ordersync makes of the file; the reader then shares its log
        reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with running("frontcore", orders=600, seed=5, api_key=key) as fc:
            (tmp_path / "ordersync.toml").write_text(
                f'[destination]\nurl = "sqlite:///{path}"\n[sources.shop]\ntype = "frontcore"\n'
                f'api_key = "{key}"\nbase_url = "{fc.url}/v2"\nrequests_per_second = 1000\nstreams = ["orders"]\n'
                'limit = 20\n')
            done = subprocess.run([sys.executable, "-m", "ordersync", "sync", "-q"], cwd=tmp_path,
                                  capture_output=True, text=True, env=dict(os.environ), timeout=240)
        assert done.returncode == 0, done.stderr
        assert reader.execute("SELECT count(*) FROM orders").fetchone() == (600,)
        log = Path(f"{path}-wal")
        assert not log.exists() or log.stat().st_size == 0
        shutil.copy(path, tmp_path / "copy.db")
    finally:
        reader.close()
    assert orders_in(tmp_path / "copy.db") == 600
