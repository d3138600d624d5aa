"""The shape of ``ordersync status --json`` (and of ``ordersync.api.status``), version 1, as pydantic models.

Monitoring reads this, so it changes only by adding optional fields; anything else is a new ``version``. Times are
ISO 8601 in UTC with ``Z``, except ``data_until.vendor_time``, which carries the vendor's offset. The JSON Schema
of it is committed as ``docs/status.schema.json`` (``python -m ordersync.status_model`` writes it; a test checks
that it is current) and described in docs/operations.md ("Monitoring: status --json").
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

VERSION: Literal[1] = 1
SCHEMA_PATH = Path("docs/status.schema.json")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Counts(_Shape):
    """Rows one run wrote: new ones, changed ones, and ones read again unchanged."""

    new: int = Field(ge=0)
    changed: int = Field(ge=0)
    unchanged: int = Field(ge=0)


class LastRun(_Shape):
    """The latest run of a stream (it may still be running)."""

    status: Literal["running", "ok", "failed", "interrupted"] = Field(
        description="interrupted: stopped on request after a stored page, or left by a process that died")
    started_at: datetime
    finished_at: datetime | None = Field(description="null while running")
    duration_ms: int | None = Field(ge=0, description="null while running, and for runs logged by a version of "
                                                       "ordersync that did not record it")
    requests: int = Field(ge=0)
    orders: Counts | None = Field(description="null for runs logged by a version that counted rows only in total")
    customers: Counts | None
    error: str | None = Field(description="the failure's one line, for a failed run")


class DataUntil(_Shape):
    """How far the stream's data reaches, as the vendor's clock and as UTC read it."""

    of: Literal["changes", "orders created"] = Field(
        description="changes: every change the API stamped up to this instant is stored; orders created: the API "
                    "has no cursor of changes (Firespring), the newest order stored was created then")
    vendor_time: datetime = Field(description="the instant in the vendor's zone, with its offset")
    zone: str = Field(description="the vendor's time zone (IANA name)")
    utc: datetime


class UnfinishedRun(_Shape):
    """A run not finished: running now, or stopped half way (the next run resumes it)."""

    started_at: datetime
    current_pass: str
    pass_number: int = Field(ge=1)
    passes: list[str]
    stretches_stored: int = Field(ge=0, description="complete stretches of the current pass, stored")


class StreamStatus(_Shape):
    """One stream of one source."""

    stream: str
    healthy: bool = Field(description="the latest run that ended succeeded and no rejected record is outstanding")
    line: str = Field(description="the same words as the human output of 'ordersync status' and the dashboard")
    last_success: datetime | None = Field(description="when the latest successful run ended")
    last_run: LastRun | None
    data_until: DataUntil | None = Field(description="null before the first complete run")
    rows: int = Field(ge=0, description="rows of this stream's table for this source (orders, or customers)")
    rows_of: str | None = Field(description="the table 'rows' counts; null for a stream without a table of its "
                                            "name")
    rejects_outstanding: int = Field(ge=0, description="records of this stream in _ordersync_rejects")
    next_sweep_day: date | None = Field(description="the oldest creation day the rolling sweep has not re-read in "
                                                    "its current lap; null where the stream does not sweep")
    unfinished_run: UnfinishedRun | None
    state_note: str | None = Field(description="why the stored state cannot be used (the next run reads "
                                               "everything again)")


class SourceStatus(_Shape):
    source: str
    api: str | None = Field(description="the API's type; null for a source neither configured nor stored")
    configured: bool = Field(description="false: a source found in the database but no longer in the "
                                         "configuration")
    healthy: bool = Field(description="it has streams and every one is healthy")
    streams: list[StreamStatus]


class StatusReport(_Shape):
    """``ordersync status --json``."""

    version: Literal[1] = Field(description="the shape's version: any change but a new optional field is a new one")
    generated_at: datetime
    destination: str = Field(description="the destination, never with its password")
    healthy: bool = Field(description="every source is healthy")
    sources: list[SourceStatus]


def json_schema() -> bytes:
    """The committed JSON Schema of :class:`StatusReport`. The models refuse unknown fields (so a test catches a
    field added without its description); the schema does not, since version 1 may gain optional fields."""
    schema = StatusReport.model_json_schema()
    for shape in [schema, *schema.get("$defs", {}).values()]:
        shape.pop("additionalProperties", None)
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


if __name__ == "__main__":  # python -m ordersync.status_model [PATH]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    target.write_bytes(json_schema())
    print(f"wrote {target}")
