"""e-guma source settings: the four documented filters and the window plan, validated before any request."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ordersync.apis.base import SourceSettings, ZoneName
from ordersync.apis.eguma.localtime import EXAMPLE, parse_local

DEFAULT_START = "2015-01-01T00:00:00"


class EgumaSettings(SourceSettings):
    type: Literal["eguma"]
    api_key: SecretStr
    base_url: str = "https://api.e-guma.ch/v1"
    timeout: float = Field(60.0, gt=0, description="seconds before an answer counts as too slow: its window is split")
    timezone: ZoneName = "Europe/Zurich"
    streams: list[Literal["orders"]] = ["orders"]
    created_at_after: str | None = None
    created_at_before: str | None = None
    updated_at_after: str | None = None
    updated_at_before: str | None = None
    start_date: str = Field(DEFAULT_START, description="first run: orders modified at or after this local time")
    window_days: float = Field(30.0, gt=0, le=366, description="size of the first date window (first run), in days")
    max_window_days: float = Field(366.0, gt=0, description="windows never grow beyond this many days")
    split_threshold: int = Field(1000, ge=1, description="the most orders an answer should hold: windows are sized "
                                 "for about half as many at the density seen; an answer with more is kept and "
                                 "stored in parts, and the next windows are smaller")
    lookback_seconds: int = Field(300, ge=0, description="each run re-reads this much before the last one's end")

    @field_validator("created_at_after", "created_at_before", "updated_at_after", "updated_at_before", "start_date")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if parse_local(value) is None:
            raise ValueError(f"'{value}' is not a local date and time like {EXAMPLE} (no zone, seconds included)")
        return value


    @model_validator(mode="after")
    def _ranges(self) -> EgumaSettings:
        for field in ("created_at", "updated_at"):
            after, before = getattr(self, f"{field}_after"), getattr(self, f"{field}_before")
            if after and before and after >= before:
                raise ValueError(f"{field}_after ({after}) must be earlier than {field}_before ({before})")
        if self.max_window_days < self.window_days:
            raise ValueError("max_window_days must be at least window_days")
        return self

    def lower_bound(self) -> datetime:
        """Where the first run starts: ``updated_at_after`` if set, else ``start_date`` (local, naive)."""
        value = parse_local(self.updated_at_after or self.start_date)
        assert value is not None
        return value
