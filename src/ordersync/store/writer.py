"""Pages written by a second process, so that a sync uses both cores.

A sync is bound by Python's interpreter lock: reading, parsing and normalizing page n+1 and writing page n take
turns on one core even in two threads. With a writer process, the sync process reads, parses, normalizes and
renders each page's ``raw`` texts, and the writer hashes, compares and stores it: page n is written there while
page n+1 is read here. Nothing changes in what is stored or when: :meth:`Store.write_page` still returns only
once the page's rows and state are committed, pages are written one at a time in the order they are given, and a
failure is raised in the sync process as it would have been in a thread.

The writer is a child process of its own (``python -m ordersync.store.writer_main``: its loop is there, the
sync process's end here; pages pickled over a pipe), not a ``multiprocessing`` child: that would import the
parent's ``__main__`` (an orchestrator's, a test runner's).
It dies with the sync process (``PR_SET_PDEATHSIG`` on Linux; elsewhere when its pipe closes), so a killed sync
leaves at most an uncommitted transaction, which the database rolls back. It ignores Ctrl-C: the sync process
decides when to stop, after the page being written commits.

Used for file-backed SQLite and for PostgreSQL, where another connection sees the same database; DuckDB allows
one process per file and an in-memory database is private to its connection, so those write in a thread.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import IO, Any

from ordersync.errors import StoreError

_HEADER = struct.Struct("!Q")


def pack(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data  # one write: one wake-up of the reader


def send(stream: IO[bytes], message: Any) -> None:
    stream.write(pack(message))
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class WriterProcess:
    """The sync process's end. Requests are sent and answered strictly in the order they are submitted: a sender
    thread writes them (a full pipe never blocks the caller), a reader thread resolves each one's future."""

    def __init__(self, url: str, options: dict[str, Any], label: str, answer_wait: float | None = None,
                 stalled: str = "") -> None:
        """``answer_wait``: while requests are pending, the longest wait for the next answer; after it the writer
        is killed and they fail with ``stalled`` (a frozen server must not hold the sync for ever)."""
        self.label = label  # the destination without a password, for messages
        self._answer_wait, self._stalled = answer_wait, stalled
        self._failure: StoreError | None = None  # why the writer ended, when it said so or was stopped for it
        self._waiting_since: float | None = None  # when the oldest unanswered request began to wait
        self._ended = False  # the reader has stopped: nothing more will be answered
        self._order = threading.Lock()  # a request's place in the queue and among the answers are taken together
        self._pending: collections.deque[Future[Any]] = collections.deque()
        self.cpu_seconds = 0.0  # the writer process's CPU time so far, as of its last answer
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._proc = subprocess.Popen([sys.executable, "-m", "ordersync.store.writer_main"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, close_fds=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._to, self._from = self._proc.stdin, self._proc.stdout
        for pipe in (self._to, self._from):
            _widen(pipe)
        # the URL (it may hold a password) goes through the pipe, never the command line
        self._outbox.put(pack((os.getpid(), url, options)))
        self._threads = [threading.Thread(target=self._send_all, name="ordersync-writer-send", daemon=True),
                         threading.Thread(target=self._receive_all, name="ordersync-writer-receive", daemon=True)]
        if answer_wait is not None:
            self._threads.append(threading.Thread(target=self._watch, args=(answer_wait,), daemon=True,
                                                  name="ordersync-writer-watch"))
        for thread in self._threads:
            thread.start()

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``store.method(*args, **kwargs)`` for the writer; the future holds its result or error."""
        future: Future[Any] = Future()
        frame = pack((method, args, kwargs))
        with self._order:
            if self._ended or (self._proc.poll() is not None and not self._pending):
                future.set_exception(self._died())
                return future
            if not self._pending:
                self._waiting_since = time.monotonic()
            self._pending.append(future)
            self._outbox.put(frame)
        return future

    def _watch(self, limit: float) -> None:
        """Kill the writer when pending requests have had no answer for ``limit`` seconds: the reader then fails
        them with the ``stalled`` line (the server's transaction rolls back when the connection drops)."""
        while self._proc.poll() is None:
            time.sleep(min(1.0, limit / 4))
            with self._order:
                since = self._waiting_since if self._pending else None
                if since is None or time.monotonic() - since < limit:
                    continue
                self._failure = StoreError(self._stalled)
            with contextlib.suppress(OSError):
                self._proc.kill()
            return

    def _send_all(self) -> None:
        while (frame := self._outbox.get()) is not None:
            try:
                self._to.write(frame)
                self._to.flush()
            except OSError:
                return  # the writer is gone: the reader fails what is pending
        with contextlib.suppress(OSError):
            self._to.close()  # end of input: the writer closes its database and exits

    def _receive_all(self) -> None:
        while True:
            try:
                outcome, value, self.cpu_seconds = receive(self._from)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            if outcome == "fatal":  # the writer could not open the destination: its one line, for every request
                self._failure = StoreError(value)
                break
            with self._order:
                future = self._pending.popleft()
                self._waiting_since = time.monotonic() if self._pending else None
            if outcome == "ok":
                future.set_result(value)
            elif outcome == "store":
                future.set_exception(StoreError(value))
            else:
                future.set_exception(WriterFailed(value))
        with self._order:
            failed, self._pending, self._ended = list(self._pending), collections.deque(), True
        for future in failed:
            future.set_exception(self._died())

    @property
    def alive(self) -> bool:
        """Whether the writer process still runs: a long-lived caller (watch mode) replaces one that is gone."""
        return self._proc.poll() is None

    def _died(self) -> StoreError:
        if self._failure is not None:
            return self._failure
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return StoreError(f"the process writing to {self.label} {_how_it_ended(code)}; the page was not stored "
                          "(the pages before it were): run the sync again (a watch starts a new writer next round)")

    def close(self) -> None:
        self._outbox.put(None)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for thread in self._threads:
            if thread.name != "ordersync-writer-watch":  # it ends within a second of the process
                thread.join(timeout=5)
        self._from.close()


def _how_it_ended(code: int | None) -> str:
    """How the writer process ended, for a user: a signal by name (SIGKILL is most often the out-of-memory
    killer), else its exit status."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the system's out-of-memory killer does this: check the machine's memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"ended unexpectedly (exit status {code})"


def _widen(pipe: IO[bytes]) -> None:
    """A page is megabytes: a 1 MB pipe (Linux) moves it in a few steps instead of one per 64 KB."""
    if sys.platform.startswith("linux"):
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size


class WriterFailed(Exception):
    """An unexpected error in the writer process (a bug, not the destination): its type and message."""
