"""e-guma source settings: the four documented filters and the window plan, validated before any request."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from ordersync.apis.base import SourceSettings, ZoneName
from ordersync.apis.eguma.localtime import EXAMPLE, parse_local
from ordersync.settings_fields import FILTER

DEFAULT_START = "2015-01-01T00:00:00"
_LOCAL = f"Written {EXAMPLE}: local time of timezone, no zone, seconds included."


class EgumaSettings(SourceSettings):
    model_config = ConfigDict(json_schema_extra={"source_name": "vouchers"})

    type: Literal["eguma"] = Field(description="This section reads the e-guma REST API v1.")
    api_key: SecretStr = Field(description="The e-guma API key, sent as the apikey query parameter.")
    base_url: str = Field("https://api.e-guma.ch/v1", description="e-guma's address. Point it at a sandbox "
                          "(ordersync serve eguma) to try things.")
    timeout: float = Field(60.0, gt=0, description="Seconds an answer may take. A slower answer is not a failure: "
                           "its date window is split and read in smaller parts.")
    timezone: ZoneName = Field("Europe/Zurich", description="The zone of e-guma's timestamps and of the date "
                               "settings here. e-guma's timestamps carry no zone. An IANA name, checked when the file "
                               "is read.")
    streams: list[Literal["orders"]] = Field(["orders"], description="The streams to sync: e-guma has one, orders. "
                                             "Each order carries its customer and payments.")
    created_at_after: str | None = Field(None, json_schema_extra=FILTER, examples=["2024-01-01T00:00:00"],
                                         description=f"Only orders created at or after this local time. {_LOCAL}")
    created_at_before: str | None = Field(None, json_schema_extra=FILTER, examples=["2025-01-01T00:00:00"],
                                          description=f"Only orders created before this local time, after "
                                                      f"created_at_after. {_LOCAL}")
    updated_at_after: str | None = Field(None, json_schema_extra=FILTER, examples=["2024-01-01T00:00:00"],
                                         description=f"Only orders modified at or after this local time. The "
                                                     f"first run starts here instead of at start_date. {_LOCAL}")
    updated_at_before: str | None = Field(None, json_schema_extra=FILTER, examples=["2025-01-01T00:00:00"],
                                          description=f"Only orders modified before this local time, after "
                                                      f"updated_at_after. {_LOCAL}")
    start_date: str = Field(DEFAULT_START, description=f"Where the first run starts: orders modified at or after "
                            f"this local time. {_LOCAL}")
    window_days: float = Field(30.0, gt=0, le=366, description="Days of the first run's first date window. Later "
                               "windows are sized by the density of orders seen.")
    max_window_days: float = Field(366.0, gt=0, description="Windows never grow beyond this many days. At least "
                                   "window_days.")
    split_threshold: int = Field(1000, ge=1, description="The most orders one answer should hold. Windows are sized "
                                 "for about half as many at the density seen; an answer with more is kept and stored "
                                 "in parts, and the next windows are smaller.")
    lookback_seconds: int = Field(300, ge=0, description="Seconds each run re-reads before the last run's end. "
                                  "For a late write, or a vendor clock a little behind ours.")

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
