"""The writer process's own loop (``python -m ordersync.store.writer_main``): it opens the destination with the
sync process's URL and options, then runs each request it receives (pages first of all) and answers them in order.
The sync process's end, and why a second process writes at all, is :mod:`ordersync.store.writer`."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import IO, Any

from ordersync.errors import StoreError
from ordersync.shutdown import exit_quickly
from ordersync.store.factory import open_store
from ordersync.store.writer import receive, send


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The writer's loop: open the destination, then run each request on it until the input ends. Pages are
    started in the order they arrive (PostgreSQL has the next one in flight while one commits); a thread sends
    each answer, in that same order, as soon as it is known."""
    parent, url, options = receive(requests)
    _die_with_parent(parent)
    try:
        store = open_store(url, **options)
    except StoreError as exc:  # the server refused us (no free connection, shutting down): its line, no traceback
        with contextlib.suppress(OSError):
            send(answers, ("fatal", str(exc), time.process_time()))
        return
    outcomes: queue.SimpleQueue[Future[Any] | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_answer_all, args=(outcomes, answers), name="ordersync-writer-answers")
    sender.start()
    last: Future[Any] | None = None
    try:
        while True:
            try:
                method, args, kwargs = receive(requests)
            except EOFError:
                return
            if method == "write_in_sequence":
                last = store.start_in_sequence(*args, **kwargs)
                outcomes.put(last)
                continue
            if last is not None:  # anything else runs once the pages before it have ended
                futures_wait([last])
            outcome: Future[Any] = Future()
            try:
                outcome.set_result(getattr(store, method)(*args, **kwargs))
            except Exception as exc:
                outcome.set_exception(exc)
            outcomes.put(outcome)
    finally:
        outcomes.put(None)
        sender.join()
        store.close()


def _answer_all(outcomes: queue.SimpleQueue[Future[Any] | None], answers: IO[bytes]) -> None:
    while (future := outcomes.get()) is not None:
        try:
            answer: tuple[str, Any] = ("ok", future.result())
        except StoreError as exc:
            answer = ("store", str(exc))
        except Exception as exc:  # a bug: its type and message reach the sync's result
            answer = ("internal", f"{type(exc).__name__}: {exc}")
        try:
            send(answers, (*answer, time.process_time()))  # with its CPU so far: the sync process balances on it
        except OSError:
            return  # the sync process is gone


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sync process's to handle (it stops after a page)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed may mix with the answers
    try:
        serve(requests, answers)
    finally:
        exit_quickly()


if __name__ == "__main__":
    main()
