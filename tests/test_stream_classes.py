"""A stream is a class (:class:`ordersync.paging.Stream`): what a new API must say and what it may leave to the
defaults, read through the one loop with a server in the test's memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from ordersync.model import Record, Rows
from ordersync.paging import (
    Answer,
    Carver,
    Request,
    SlicePlan,
    Span,
    Stream,
    StreamStateWithRun,
    WholeAnswer,
    read_stream,
)

RECORDS: list[dict[str, Any]] = [{"id": n, "at": n, "updated": datetime(2025, 1, 1 + n % 28, tzinfo=UTC)}
                                 for n in range(40)]


async def answer(request: Request) -> Answer:
    """Every record whose ``at`` lies in the window asked."""
    lo, hi = request.params["from"], request.params["to"]
    return Answer([r for r in RECORDS if lo <= r["at"] < hi])


class Numbers(Stream[StreamStateWithRun]):
    """The least a stream says: its name, state, filters, passes, the slices of a pass, its fold and rows."""

    name = "numbers"
    state = StreamStateWithRun

    def __init__(self) -> None:
        self.finished: list[str] = []

    @property
    def filters(self) -> dict[str, Any]:
        return {}

    def passes(self, state: StreamStateWithRun) -> list[str]:
        return ["all"]

    def plan(self, kind: str, state: StreamStateWithRun) -> SlicePlan:
        reader = WholeAnswer("numbers", self.query, target=10, part_size=10, too_slow_hint="")
        return SlicePlan((0, 40), reader, Carver(target=10, first=10), place=self.place, path="numbers")

    def query(self, part: Span) -> dict[str, Any]:
        return {"from": part[0], "to": part[1]}

    def place(self, record: Record) -> int | None:
        return int(record["at"])

    def finish(self, kind: str, state: StreamStateWithRun) -> StreamStateWithRun:
        self.finished.append(kind)
        assert state.run is not None
        return state.model_copy(update={"cursor": state.run.seen_max})

    def normalize(self, record: Record) -> Rows:
        return Rows()


class UpdatedNumbers(Numbers):
    """The same, with a cursor field: the run keeps its latest value, and the fold makes it the cursor."""

    def cursor(self, record: Record) -> datetime | None:
        return record["updated"]  # type: ignore[no-any-return]


def read(stream: Numbers) -> tuple[list[int], StreamStateWithRun]:
    async def pages() -> tuple[list[int], StreamStateWithRun]:
        state, _note = stream.state.load(None, stream.filters)
        ids: list[int] = []
        async for page in read_stream(stream, answer, state):
            ids += [r["id"] for r in page.records]
            state = page.state
        return ids, state

    return asyncio.run(pages())


def test_a_stream_declaring_only_what_it_must_is_read_whole_and_its_pass_is_folded() -> None:
    stream = Numbers()
    ids, state = read(stream)
    assert sorted(ids) == [r["id"] for r in RECORDS]
    assert stream.finished == ["all"] and state.run is None
    assert state.cursor is None  # no cursor field declared: the run saw none
    assert stream.sweep is None and stream.run_end() is None and stream.identity({"a": 1}) == stream.identity({"a": 1})


def test_a_declared_cursor_is_what_the_run_keeps_for_the_fold() -> None:
    ids, state = read(UpdatedNumbers())
    assert len(ids) == len(RECORDS)
    assert state.cursor == max(r["updated"] for r in RECORDS)


def test_a_stream_that_leaves_out_a_method_every_stream_must_declare_is_refused() -> None:
    class NoFold(Stream[StreamStateWithRun]):
        name, state = "numbers", StreamStateWithRun

        @property
        def filters(self) -> dict[str, Any]:
            return {}

        def passes(self, state: StreamStateWithRun) -> list[str]:
            return ["all"]

        def plan(self, kind: str, state: StreamStateWithRun) -> SlicePlan:
            raise NotImplementedError

        def normalize(self, record: Record) -> Rows:
            return Rows()

    with pytest.raises(TypeError, match="finish"):
        NoFold()  # type: ignore[abstract]
