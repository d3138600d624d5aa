"""Paging: every pass of a stream is read as slices of its span, and concurrency is only ever between slices.

* :mod:`.slices`: spans, their gaps, and the carver that sizes slices by the density seen;
* :mod:`.readers`: how one slice is read (numbered pages, one whole answer), page after page;
* :mod:`.engine`: the loop that reads ``concurrency`` slices at once and keeps the complete ones in the state
  (the slice rule is stated there);
* :mod:`.guard`: the checks every answer passes (a pass that never ends, a record too large, filters ignored);
* :mod:`.sweep`: the rolling sweep over older creation days;
* :mod:`.stream`: the :class:`Stream` base class an API's stream classes derive from, and the terms they share
  with the engine (requests, answers, chunks, slice plans, the run in progress).
"""

from ordersync.paging.engine import read_slices, read_stream
from ordersync.paging.guard import LoopGuard, SeenRecords
from ordersync.paging.readers import NumberedPages, WholeAnswer
from ordersync.paging.slices import Carver, Span, gaps, merge
from ordersync.paging.stream import (
    Answer,
    Chunk,
    Fetch,
    Request,
    RunProgress,
    SlicePlan,
    Stream,
    StreamStateWithRun,
)
from ordersync.paging.sweep import FLOOR, RollingSweep, Sweep, SweepSlice

__all__ = [
    "FLOOR", "Answer", "Carver", "Chunk", "Fetch", "LoopGuard", "NumberedPages", "Request",
    "RollingSweep", "RunProgress", "SeenRecords", "SlicePlan", "Span", "Stream", "StreamStateWithRun", "Sweep",
    "SweepSlice", "WholeAnswer", "gaps", "merge", "read_slices", "read_stream",
]
