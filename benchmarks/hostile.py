"""``chaos.py --hostile``: each API's ``ordersync sync`` (a real subprocess) against a tiny hostile server on
127.0.0.1 (a random port) that answers every request with

* ``bomb``: a gzip of a gzip of 256 MB of zeros (``Content-Encoding: gzip, gzip``, a few hundred bytes): the sync
  must fail with one line, its peak memory (``ru_maxrss``) under ``MEMORY_MB``;
* ``drip``: a valid answer sent one byte per 50 ms, to a source with ``timeout = 1``: one line, within
  ``DRIP_BOUND`` seconds (without a deadline per request it would take minutes);
* ``bad`` (Frontcore and Firespring, whose list formats are a plain answer): a page holding good orders, a
  ``null`` element, a lone surrogate escape and a ``1e400`` amount: the run stores the good orders and each bad
  one is a row of ``_ordersync_rejects`` (exit status 3, "records rejected").

Bounded: a few seconds per case. Exit status 0 when every case held.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SYNC_ENV, sync_argv, write_config  # noqa: E402
from targets import APIS, ordersync_source  # noqa: E402

MEMORY_MB = 256  # peak resident memory of the sync process refusing a bomb (Python and its imports: ~75 MB)
DRIP_BOUND = 20.0  # seconds a sync with timeout = 1 may take against the drip (e-guma splits a slow window: ~12 s)
DRIP_DELAY = 0.05


def gzip_of(chunks: Callable[[], object], level: int = 9) -> bytes:
    """A gzip stream of the bytes ``chunks()`` yields, compressed piece by piece (nothing large held)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [packer.compress(c) for c in chunks()]  # type: ignore[attr-defined]
    return b"".join([*out, packer.flush()])


def bomb() -> bytes:
    zero = bytes(1 << 20)
    inner = gzip_of(lambda: (zero for _ in range(256)))
    return gzip_of(lambda: iter([inner]))


def order(i: int, created: str = "2026-06-01T10:00:00+02:00") -> bytes:
    return orjson.dumps({"id": i, "created_at": created, "updated_at": None, "lines": [],
                         "calculated_totals": {"total_amount_incl_discounts_and_vat": "10.00"}})


def bad_page(api: str) -> tuple[bytes, bytes]:
    """The hostile page of ``api`` and the empty answer every later request gets."""
    if api == "frontcore":
        good = [order(1), order(2)]
        bad = [b"null", b'{"id": 11, "created_at": "2026-06-01T10:00:00+02:00", "lines": [], "note": "cut \\ud83d"}',
               b'{"id": 12, "created_at": "2026-06-01T10:00:00+02:00", "lines": [], "calculated_totals": '
               b'{"total_amount_incl_discounts_and_vat": 1e400}}']
        return b"[" + b",".join([*good, *bad]) + b"]", b"[]"
    meta = b'"meta": {"pagination": {"total": %d, "count": %d, "per_page": 100, "current_page": 1, "total_pages": 1}}'
    one = b'{"id": %d, "date_created": "2026-06-01T10:00:00-05:00", "currency": "USD", "amount_paid": 1000, ' \
          b'"pricing": {"total": %s}%s}'
    records = [one % (1, b"1000", b""), one % (2, b"1000", b""), b"null", one % (11, b"1000", b', "x": "\\ud83d"'),
               one % (12, b"1e400", b"")]
    return (b'{"data": [' + b",".join(records) + b"], " + meta % (5, 5) + b"}",
            b'{"data": [], ' + meta % (0, 0) + b"}")


@dataclass
class Hostile:
    """An HTTP/1.1 server on 127.0.0.1 that answers every request the same hostile way (``mode``)."""

    mode: str
    api: str
    port: int = 0

    def __post_init__(self) -> None:
        self.bomb = bomb() if self.mode == "bomb" else b""
        self.page, self.empty = bad_page(self.api) if self.mode == "bad" else (b"", b"")
        self.answered = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                await self.answer(head, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def answer(self, head: bytes, writer: asyncio.StreamWriter) -> None:
        token = b"/token" in head.split(b"\r\n")[0] or b"oauth" in head.split(b"\r\n")[0].lower()
        body, extra = b'{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}', b""
        if self.mode == "bomb":
            body, extra = self.bomb, b"Content-Encoding: gzip, gzip\r\n"
        elif self.mode == "bad" and not token:
            body = self.page if self.answered == 0 else self.empty
            self.answered += 1
        elif self.mode == "drip":
            body = b"[" + b",".join([order(i) for i in range(1, 40)]) + b"]"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
                     b"Content-Length: %d\r\n\r\n" % len(body))
        if self.mode != "drip":
            writer.write(body)
            await writer.drain()
            return
        for i in range(len(body)):
            writer.write(body[i:i + 1])
            await writer.drain()
            await asyncio.sleep(DRIP_DELAY)

    def __enter__(self) -> Hostile:
        async def start() -> None:
            self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()

        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Case:
    api: str
    mode: str
    ok: bool
    line: str


def run_sync(config: Path) -> tuple[int, str, float, float]:
    """One ``ordersync sync`` process: exit status, stderr, seconds, peak resident memory (MB)."""
    import subprocess

    started = time.monotonic()
    child = subprocess.Popen(sync_argv(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, **SYNC_ENV})
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, err, time.monotonic() - started, usage.ru_maxrss / 1024


def one_case(api: str, mode: str, work: Path) -> Case:
    db = work / f"{api}-{mode}.db"
    with Hostile(mode, api) as server:
        source = {**ordersync_source(api, f"http://127.0.0.1:{server.port}"), "max_retries": 0,
                  "timeout": 1 if mode == "drip" else 10, "max_body_mb": 8}
        config = write_config(work / f"{api}-{mode}.toml", f"sqlite:///{db}", {"bench": source})
        code, err, seconds, peak = run_sync(config)
    lines = [line for line in err.splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    if mode in ("bomb", "drip"):
        one_line = code != 0 and len(lines) <= 2 and "Traceback" not in err
        ok = one_line and (peak < MEMORY_MB if mode == "bomb" else seconds < DRIP_BOUND)
        return Case(api, mode, ok, f"exit {code}, {seconds:.1f} s, {peak:.0f} MB peak: {said[:140]}")
    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT order_id FROM orders")}
        rejected = conn.execute("SELECT count(*) FROM _ordersync_rejects").fetchone()[0]
    ok = code in (0, 3) and stored == {"1", "2"} and rejected == 3  # 3: the documented "records rejected"
    return Case(api, mode, ok, f"exit {code}, stored {sorted(stored)}, {rejected} rejected {said[:100]}")


def main(apis: list[str]) -> int:
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="ordersync-hostile-") as tmp:
        for api in apis:
            for mode in ("bomb", "drip", *(("bad",) if api in ("frontcore", "firespring") else ())):
                case = one_case(api, mode, Path(tmp))
                cases.append(case)
                print(f"{'ok  ' if case.ok else 'FAIL'} {api:<10} {mode:<5} {case.line}", flush=True)
    return 0 if all(c.ok for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main(list(APIS)))
