"""The status of every source and stream: built once (:func:`report`, the shape of :mod:`ordersync.status_model`)
from what the destination holds (:func:`ordersync.store.reads.stream_records`) and the configuration, then shown
as JSON (``ordersync status --json``, ``ordersync.api.status``) or as one line per stream (:func:`line`: the same
words in ``ordersync status`` and on the dashboard).

What a stream's stored state means (how far its data reaches, the sweep, a run half done) only its API knows: its
state class says it (``describe(zone)``, :mod:`ordersync.stateview`); here it is put in words, never shown as it
is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ordersync import apis
from ordersync.apis.base import SourceSettings
from ordersync.model import State
from ordersync.stateview import StateView
from ordersync.status_model import (
    VERSION,
    Counts,
    DataUntil,
    LastRun,
    SourceStatus,
    StatusReport,
    StreamStatus,
    UnfinishedRun,
)
from ordersync.store.urls import redact

if TYPE_CHECKING:
    from ordersync.config import Config
    from ordersync.store.reads import StoredRun, StoredStream

OTHER_VERSION = "the stored state is from another version of ordersync: the next run reads everything again"
UNREADABLE = "the stored state cannot be read: the next run reads everything again"


# --- a stream's state, as its API reads it ----------------------------------------------------------------------
def zone_of(api: str | None, settings: SourceSettings | None) -> ZoneInfo:
    """The vendor's time zone: the source's ``timezone`` setting where its API has one (Frontcore, e-guma; their
    default when the source is not configured), else UTC (Prio's and Firespring's times are UTC)."""
    name = getattr(settings, "timezone", None)
    if name is None and api is not None and api in apis.registry():
        field = apis.get(api).settings.model_fields.get("timezone")
        name = field.default if field is not None else None
    return ZoneInfo(name if isinstance(name, str) else "UTC")


def view(api: str | None, settings: SourceSettings | None, stored: State | None) -> StateView:
    """What the stored state of a stream says, as its API's state class reads it; a state of another version or
    one that does not validate is not guessed at (the next run reads everything again, and says so)."""
    api = settings.type if settings is not None else api
    if not stored or api is None or api not in apis.registry():
        return StateView()
    state_type = apis.get(api).state
    if stored.get("version") != state_type.VERSION:
        return StateView(note=OTHER_VERSION)
    try:
        state = state_type.model_validate(stored)
    except ValidationError:
        return StateView(note=UNREADABLE)
    return state.describe(zone_of(api, settings))


def describe(settings: SourceSettings | None, stream: str, stored: State | None) -> dict[str, str]:
    """The state in words, one entry per fact (``data up to``, ``next sweep day``, ``unfinished run``, ``state``):
    what an orchestrator shows beside a materialization (the Dagster integration)."""
    return describe_view(view(None, settings, stored))


def describe_view(shown: StateView) -> dict[str, str]:
    """A state's view in words, one entry per fact (see :func:`describe`)."""
    words = {}
    if shown.reach is not None:
        words[_reach_label(shown)] = reach_words(shown)
    if shown.next_sweep_day is not None:
        words["next sweep day"] = shown.next_sweep_day.isoformat()
    if shown.unfinished is not None:
        words["unfinished run"] = shown.unfinished.words()
    if shown.note is not None:
        words["state"] = shown.note
    return words


def state_words(settings: SourceSettings | None, stored: State | None) -> str:
    """The state as one phrase: ``data up to 2026-11-25 10:55 Europe/Oslo (09:55 UTC), next sweep day
    2026-10-01`` (empty when nothing is stored)."""
    words = describe_view(view(None, settings, stored))
    return ", ".join(v if k in ("unfinished run", "state") else f"{k} {v}" for k, v in words.items())


def _reach_label(shown: StateView) -> str:
    return "orders created up to" if shown.reach and shown.reach.what == "orders created" else "data up to"


def reach_words(shown: StateView) -> str:
    """``2026-12-06 14:03 Europe/Oslo (13:03 UTC)``, or ``2026-12-06 13:03 UTC`` for an API on UTC."""
    assert shown.reach is not None
    local, utc = shown.reach.vendor_time, shown.reach.utc
    if shown.reach.zone == "UTC":
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    same_day = local.date() == utc.date()
    return f"{local:%Y-%m-%d %H:%M} {shown.reach.zone} ({utc:%H:%M} UTC)" if same_day else \
        f"{local:%Y-%m-%d %H:%M} {shown.reach.zone} ({utc:%Y-%m-%d %H:%M} UTC)"


# --- the report ---------------------------------------------------------------------------------------------
def report(stored: Sequence[StoredStream], sources: Mapping[str, SourceSettings], destination: str,
           now: datetime | None = None) -> StatusReport:
    """Every configured source, and every source the destination holds, with its streams (the shape of
    :class:`ordersync.status_model.StatusReport`). ``sources``: the configuration's (none: only what is stored)."""
    now = now or datetime.now(UTC)
    by_source: dict[str, list[StoredStream]] = {name: [] for name in sources}
    for item in stored:
        by_source.setdefault(item.source, []).append(item)
    result = []
    for source in sorted(by_source):
        settings = sources.get(source)
        items = sorted(by_source[source], key=lambda i: i.stream)
        api = settings.type if settings is not None else next((i.api for i in items if i.api), None)
        streams = [stream_status(item, api, settings, now) for item in items]
        result.append(SourceStatus(source=source, api=api, configured=settings is not None,
                                   healthy=bool(streams) and all(s.healthy for s in streams), streams=streams))
    return StatusReport(version=VERSION, generated_at=now, destination=destination,
                        healthy=all(s.healthy for s in result), sources=result)


def stream_status(item: StoredStream, api: str | None, settings: SourceSettings | None,
                  now: datetime) -> StreamStatus:
    """One stream's status: its runs, its state in the API's words, its rows and rejects, and the line."""
    shown = view(api, settings, item.state)
    reach = shown.reach
    unfinished = shown.unfinished
    status = StreamStatus(
        stream=item.stream,
        healthy=item.last_ended == "ok" and item.rejected == 0,
        line="",
        last_success=item.last_success,
        last_run=_last_run(item.last_run) if item.last_run else None,
        data_until=DataUntil(of=reach.what, vendor_time=reach.vendor_time, zone=reach.zone, utc=reach.utc)
        if reach else None,
        rows=item.rows, rows_of=item.rows_of, rejects_outstanding=item.rejected,
        next_sweep_day=shown.next_sweep_day,
        unfinished_run=UnfinishedRun(started_at=unfinished.started.astimezone(UTC), current_pass=unfinished.current,
                                     pass_number=unfinished.index + 1, passes=list(unfinished.passes),
                                     stretches_stored=unfinished.stretches) if unfinished else None,
        state_note=shown.note,
    )
    return status.model_copy(update={"line": line(status, now, shown)})


def _last_run(run: StoredRun) -> LastRun:
    def counts(values: tuple[int, int, int] | None) -> Counts | None:
        return Counts(new=values[0], changed=values[1], unchanged=values[2]) if values else None

    error = (run.error or "").strip().splitlines()
    return LastRun.model_validate({
        "status": run.status, "started_at": run.started_at, "finished_at": run.finished_at,
        "duration_ms": run.duration_ms, "requests": run.requests, "orders": counts(run.orders),
        "customers": counts(run.customers), "error": redact(error[0]) if error else None})


# --- the line -----------------------------------------------------------------------------------------------
def line(status: StreamStatus, now: datetime, shown: StateView | None = None) -> str:
    """One stream in words: ``last success 2026-12-06 13:05 UTC (2 h 3 min ago), took 1.234 s; data up to
    2026-12-06 14:03 Europe/Oslo (13:03 UTC); 2,000 orders; no rejects outstanding; next sweep day 2025-03-02``."""
    parts = _runs_words(status, now)
    if shown is not None and shown.reach is not None:
        parts.append(f"{_reach_label(shown)} {reach_words(shown)}")
    elif status.state_note is None:
        parts.append("no data stored yet")
    parts.append(f"{status.rows:,} {status.rows_of or 'rows'}")
    rejects = status.rejects_outstanding
    parts.append(f"{rejects:,} reject{'s' if rejects != 1 else ''} outstanding" if rejects
                 else "no rejects outstanding")
    if status.next_sweep_day is not None:
        parts.append(f"next sweep day {status.next_sweep_day.isoformat()}")
    if shown is not None and shown.unfinished is not None:
        parts.append(shown.unfinished.words())
    if status.state_note:
        parts.append(status.state_note)
    return "; ".join(parts)


def _runs_words(status: StreamStatus, now: datetime) -> list[str]:
    """The last success, and the latest run when it did not succeed (running, failed, interrupted)."""
    run = status.last_run
    parts = []
    if status.last_success is not None:
        took = f", took {duration(run.duration_ms)}" if run and run.status == "ok" and run.duration_ms is not None \
            else ""
        parts.append(f"last success {moment(status.last_success)} ({ago(status.last_success, now)}){took}")
    else:
        parts.append("no successful run yet")
    if run is not None and run.status == "running":
        parts.append(f"running since {moment(run.started_at)} ({ago(run.started_at, now)})")
    elif run is not None and run.status != "ok":
        at = run.finished_at or run.started_at
        parts.append(f"last run {run.status} {moment(at)} ({ago(at, now)})" + (f": {run.error}" if run.error else ""))
    return parts


def moment(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def ago(at: datetime, now: datetime) -> str:
    """``just now``, ``12 min ago``, ``3 h 5 min ago``, ``4 days ago``."""
    gone = now - at
    if gone < timedelta(minutes=1):
        return "just now"
    minutes = int(gone.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min ago" if minutes % 60 else f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def duration(ms: int) -> str:
    """``0.254 s``, ``83.456 s``, ``12 min 3.456 s``: to the millisecond, as runs record it."""
    if ms < 600_000:
        return f"{ms / 1000:.3f} s"
    return f"{ms // 60_000} min {ms % 60_000 / 1000:.3f} s"


# --- reading it, and the human form -----------------------------------------------------------------------------
def collect(cfg: Config, now: datetime | None = None) -> StatusReport:
    """The status of the configured destination, read-only: nothing is created, upgraded or locked (a database
    that does not exist, or of an older schema, is one line saying so)."""
    from ordersync.store import open_store

    store = open_store(cfg.destination, **cfg.store_options(), read_only=True)
    try:
        stored = store.stream_records()
        where = store.describe()
    finally:
        store.close()
    return report(stored, cfg.sources, where, now)


def lines(shown: StatusReport) -> list[str]:
    """``ordersync status``: per source a heading, then one line per stream (:func:`line`)."""
    if not shown.sources:
        return ["No sync has run yet."]
    result = []
    for source in shown.sources:
        heading = f"{source.source} ({source.api or 'unknown API'}{'' if source.configured else ', not configured'})"
        result.append(heading + ("" if source.streams else ": no sync yet"))
        result += [f"  {s.stream}: {s.line}" for s in source.streams]
    return result
