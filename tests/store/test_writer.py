"""The writer process: a sync that stores its pages from a second process stores exactly what a thread stores,
dies with the sync process, and fails cleanly (whole pages only) when the writer itself dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ordersync import api
from ordersync.config import parse_source
from ordersync.store import Store, open_store
from ordersync.store.writer import WriterProcess
from ordersync.sync import sync_source
from tests.support import running

KEY = "api-key-7777"
PUBLISHED = {
    "orders": "order_id, status, is_paid, total_minor, currency, customer_id, created_at, updated_at, raw",
    "order_lines": "order_id, line_no, quantity, unit_price_minor, total_minor, raw",
    "customers": "customer_id, name, email, created_at, updated_at, raw",
    "order_versions": "order_id, version_no, status, total_minor",
}


def writers_of(parent: int) -> list[int]:
    """The writer processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"ordersync.store.writer" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: object, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def content(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {table: sorted(conn.execute(f"select {columns} from {table}").fetchall())
                for table, columns in PUBLISHED.items()}


def config(db: Path, settings: dict[str, object]) -> dict[str, object]:
    return {"destination": {"url": f"sqlite:///{db}"}, "sources": {"courses": settings}}


def test_the_writer_process_stores_exactly_what_a_thread_stores(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pages: list[str] = []
    original = WriterProcess.submit

    def counted(self: WriterProcess, method: str, *args: object, **kwargs: object) -> object:
        pages.append(method)
        return original(self, method, *args, **kwargs)

    monkeypatch.setattr(WriterProcess, "submit", counted)
    with running("frontcore", orders=400, seed=9, api_key=KEY) as fc:
        settings = fc.settings(limit=50)
        result = api.sync(config(tmp_path / "process.db", settings))
        assert result.ok and result.rows.new > 400
        assert pages.count("write_in_sequence") >= 8  # every page went through the writer process
        again = api.sync(config(tmp_path / "process.db", settings), full_refresh=True)
        # hashed in either process (whichever has worked less): the same hashes
        assert again.ok and again.rows.changed == 0 and again.rows.unchanged > 400

        threaded = open_store(f"sqlite:///{tmp_path / 'thread.db'}")
        try:
            source = parse_source("courses", settings)
            outcome = asyncio.run(sync_source(threaded, "courses", source))
            assert all(r.ok for r in outcome)
        finally:
            threaded.close()
        assert len(pages) == pages.count("write_in_sequence")  # the thread-mode store never used a writer
    assert content(tmp_path / "process.db") == content(tmp_path / "thread.db")


def test_a_killed_sync_takes_its_writer_with_it(tmp_path: Path) -> None:
    with running("frontcore", orders=900, seed=21, api_key=KEY, faults="latency:40") as fc:
        (tmp_path / "ordersync.toml").write_text(
            f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n[sources.courses]\n'
            f'type = "frontcore"\napi_key = "{KEY}"\nbase_url = "{fc.url}/v2"\nrequests_per_second = 100\n'
            'limit = 20\nconcurrency = 1\nstreams = ["orders"]\n')
        proc = subprocess.Popen([sys.executable, "-m", "ordersync", "sync", "-q"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # killed while the writer is at work (stored pages), not while it is still starting
            assert wait_for(lambda: writers_of(proc.pid) and _count(tmp_path / "orders.db") >= 100), \
                "the sync started no writer process"
            writer = writers_of(proc.pid)[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert wait_for(lambda: not alive(writer)), "the writer outlived its killed sync"
        finally:
            proc.kill()
            proc.wait()


def test_a_writer_that_dies_fails_the_sync_in_one_line_and_leaves_whole_pages(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with running("frontcore", orders=900, seed=5, api_key=KEY, faults="latency:30") as fc:
        settings = fc.settings(limit=20, concurrency=1, streams=["orders"])
        outcome: list[api.SyncResult] = []
        worker = threading.Thread(target=lambda: outcome.append(api.sync(config(db, settings))))
        worker.start()
        try:
            assert wait_for(lambda: writers_of(os.getpid()) and _count(db) >= 100)
            for pid in writers_of(os.getpid()):
                os.kill(pid, signal.SIGKILL)
        finally:
            worker.join(120)
        (failed,) = outcome[0].streams
        assert not failed.ok and "was killed by SIGKILL" in (failed.error or "")
        assert "Traceback" not in (failed.error or "")
        with sqlite3.connect(db) as conn:  # only whole pages: each stored order has all its lines
            broken = conn.execute("""select count(*) from orders o where json_array_length(o.raw, '$.lines') !=
                (select count(*) from order_lines l where l.source = o.source and l.order_id = o.order_id)""")
            assert broken.fetchone()[0] == 0
        again = api.sync(config(db, settings))  # the next run resumes and ends with every order once
        assert again.ok
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*), count(distinct order_id) from orders").fetchone() == (900, 900)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("select count(*) from orders").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_after_a_page_fails_in_the_writer_the_queued_page_is_not_written_and_nothing_is_lost(tmp_path: Path) -> None:
    """The writer process holds a second page while it writes one. If that one fails, the queued page must be
    refused: written, its state would claim the failed page's orders, and the next run would never read them."""
    with running("frontcore", orders=300, seed=8, api_key=KEY) as fc:
        settings = fc.settings(limit=20, concurrency=1, streams=["orders"])
        scratch = tmp_path / "scratch.db"
        assert api.sync(config(scratch, settings)).ok
        with sqlite3.connect(scratch) as conn:  # the order in which pages are read and stored
            read_order = [order_id for (order_id,) in conn.execute("select order_id from orders order by rowid")]
        doomed = read_order[110]  # on a page after the first few: the pages before it commit, then it fails

        db = tmp_path / "orders.db"
        open_store(f"sqlite:///{db}").close()
        with sqlite3.connect(db) as conn:  # slow, then fail: the next page is queued behind it by then
            conn.execute(f"""create trigger boom before insert on orders when new.order_id = '{doomed}' begin
                select count(*) from (with recursive n(i) as (select 1 union all select i + 1 from n
                                      where i < 3000000) select i from n);
                select raise(abort, 'disk full'); end""")
        failed = api.sync(config(db, settings))
        (stream,) = failed.streams
        assert not stream.ok and "disk full" in (stream.error or "")
        with sqlite3.connect(db) as conn:
            committed = [order_id for (order_id,) in conn.execute("select order_id from orders order by rowid")]
            conn.execute("drop trigger boom")
        # the pages before the failed one, in the order read; not the page queued behind it
        assert 0 < len(committed) <= 110 and committed == read_order[:len(committed)]
        again = api.sync(config(db, settings))
        assert again.ok and again.streams[0].orders.new == 300 - len(committed)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*), count(distinct order_id) from orders").fetchone() == (300, 300)


def test_rows_hashed_in_the_sync_process_match_the_writers_own_hashes(tmp_path: Path) -> None:
    """The sync process hashes a page when the writer is the slower one; either way a page read again unchanged
    must count as unchanged, or every later run would rewrite (and version) every order."""
    from datetime import UTC, datetime

    from ordersync.model import Rows
    from ordersync.store.rows import prepare_page as _prepare

    created = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    rows = Rows(
        orders=[{"order_id": "A-1", "api": "frontcore", "currency": "NOK", "total_minor": 125050, "is_paid": True,
                 "created_at": created, "updated_at": created, "raw": {"id": "A-1", "lines": [1, 2], "ø": "æ"}}],
        order_lines=[{"order_id": "A-1", "line_no": n, "quantity": n, "raw": {"n": n}} for n in (1, 2)],
        customers=[{"customer_id": "C-9", "name": "Kari", "created_at": created, "raw": {"id": "C-9"}}],
    )
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        for first, second in ((True, False), (False, True)):
            source = f"s-{first}"
            new = store.write_prepared(source, "frontcore", "orders", _prepare(rows, hashed=first), {})
            again = store.write_prepared(source, "frontcore", "orders", _prepare(rows, hashed=second), {})
            assert (new["orders"].new, new["customers"].new) == (1, 1)
            assert (again["orders"].unchanged, again["customers"].unchanged) == (1, 1)
    finally:
        store.close()


@pytest.fixture
def hashed_by_sync(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each page submitted to the writer process, in order: whether the sync process hashed its rows."""
    seen: list[bool] = []
    submit = Store.submit_page

    def recorded(self: Store, *args: object, hashed: bool = False, **kwargs: object) -> object:
        seen.append(hashed)
        return submit(self, *args, hashed=hashed, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "submit_page", recorded)
    return seen


def test_rows_are_hashed_in_whichever_process_has_worked_less(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                hashed_by_sync: list[bool]) -> None:
    """The sync process and its writer share two cores, and a sync lasts as long as the busier of them: hashing a
    page's rows (either can) goes to the one that has used less CPU so far, as the writer reports with each
    answer."""
    reported: list[float] = []
    cpu = Store.writer_cpu_seconds

    def observed(self: Store) -> float | None:
        seconds = cpu(self)
        reported.append(seconds or 0.0)
        return seconds

    def busy_writer(self: Store) -> float | None:
        seconds = cpu(self)
        return None if seconds is None else seconds + 3600.0  # the writer an hour of CPU ahead

    monkeypatch.setattr(Store, "writer_cpu_seconds", observed)
    with running("frontcore", orders=300, seed=4, api_key=KEY) as fc:
        settings = fc.settings(limit=50)
        first = api.sync(config(tmp_path / "a.db", settings))
        assert first.ok and hashed_by_sync and not any(hashed_by_sync)  # the writer has done less: it hashes
        assert max(reported) > 0.0  # a real figure, reported by the writer process with its answers
        hashed_by_sync.clear()
        monkeypatch.setattr(Store, "writer_cpu_seconds", busy_writer)
        second = api.sync(config(tmp_path / "b.db", settings))
        assert second.ok and hashed_by_sync and all(hashed_by_sync)
    assert content(tmp_path / "a.db") == content(tmp_path / "b.db")


def test_into_postgresql_the_sync_process_hashes_every_page(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                                           hashed_by_sync: list[bool]) -> None:
    """PostgreSQL's writer waits for the server's work on each page, which its CPU time does not show: the sync
    process hashes whatever the CPU figures say, and the rows stored are the same."""
    monkeypatch.setattr(Store, "writer_cpu_seconds", lambda self: 0.0)  # a writer that has done nothing yet
    with running("frontcore", orders=120, seed=4, api_key=KEY) as fc:
        settings = {"destination": {"url": pg_url}, "sources": {"courses": fc.settings(limit=40)}}
        first = api.sync(settings)
        assert first.ok and first.streams[0].orders.new == 120 and hashed_by_sync and all(hashed_by_sync)
        again = api.sync(settings, full_refresh=True)  # the hashes stored are those of the rows: all unchanged
    assert again.ok and (again.streams[0].orders.changed, again.streams[0].orders.unchanged) == (0, 120)


def test_the_writer_gets_the_destination_password_through_its_pipe_never_its_command_line(pg_url: str) -> None:
    """Any user of the machine can read a process's command line: the URL, password included, must not be on it."""
    from tests.pg_server import PASSWORD

    store = open_store(pg_url)
    try:
        store.start_writer()
        assert store.count("orders") == 0 and store.writes_elsewhere
        [writer] = writers_of(os.getpid())
        assert store._writer is not None and store._writer.submit("count", "orders").result() == 0  # it is in
        for name in ("cmdline", "environ"):
            assert PASSWORD.encode() not in Path(f"/proc/{writer}/{name}").read_bytes()
    finally:
        store.close()
