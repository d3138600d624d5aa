"""Progress while a sync works: rich bars on a terminal, plain lines elsewhere (CI, pipes, logs)."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class Reporter(Protocol):
    def started(self, source: str, stream: str) -> None: ...
    def advanced(self, source: str, stream: str, records: int) -> None: ...
    def finished(self, source: str, stream: str, summary: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    def started(self, source: str, stream: str) -> None: ...
    def advanced(self, source: str, stream: str, records: int) -> None: ...
    def finished(self, source: str, stream: str, summary: str) -> None: ...
    def close(self) -> None: ...


class PlainLines:
    """One line when a stream starts and ends, and one every ``every`` seconds in between."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0) -> None:
        self.out = out or sys.stderr
        self.every = every
        self.records: dict[tuple[str, str], int] = {}
        self.last = time.monotonic()

    def started(self, source: str, stream: str) -> None:
        self.records[(source, stream)] = 0
        print(f"{source}/{stream}: started", file=self.out, flush=True)

    def advanced(self, source: str, stream: str, records: int) -> None:
        self.records[(source, stream)] = self.records.get((source, stream), 0) + records
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(f"{source}/{stream}: {self.records[(source, stream)]:,} records read", file=self.out, flush=True)

    def finished(self, source: str, stream: str, summary: str) -> None:
        print(f"{source}/{stream}: {summary}", file=self.out, flush=True)

    def close(self) -> None:
        pass


class Bars:
    """Rich progress: a spinner, the records read so far and the elapsed time per stream."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TextColumn("{task.completed:,.0f} records"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.progress.start()

    def started(self, source: str, stream: str) -> None:
        self.tasks[(source, stream)] = self.progress.add_task(f"{source}/{stream}", total=None)

    def advanced(self, source: str, stream: str, records: int) -> None:
        self.progress.advance(self.tasks[(source, stream)], records)

    def finished(self, source: str, stream: str, summary: str) -> None:
        task = self.tasks[(source, stream)]
        self.progress.update(task, description=f"{source}/{stream}: {summary}", total=1)
        self.progress.stop_task(task)

    def close(self) -> None:
        self.progress.stop()


def reporter(console: Console, quiet: bool = False) -> Reporter:
    if quiet:
        return Silent()
    return Bars(console) if console.is_terminal else PlainLines()
