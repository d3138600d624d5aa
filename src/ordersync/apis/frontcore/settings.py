"""Frontcore source settings: every documented filter, validated before any request is sent."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from ordersync.apis.base import SourceSettings, ZoneName

MAX_LIMIT = 250
ORDER_INCLUDES = Literal["lines.database_relations.course", "lines.database_relations.participants", "campaign"]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


class FrontcoreSettings(SourceSettings):
    type: Literal["frontcore"]
    api_key: SecretStr
    base_url: str = "https://api.frontcore.com/v2"
    requests_per_second: float | None = Field(5.0, gt=0, description="Frontcore allows 5 per second per account")
    streams: list[Literal["orders", "customers"]] = ["orders", "customers"]
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT, description="records per page (the API's maximum is 250)")
    course_id: int | None = None
    since_id: int | None = Field(None, ge=0)
    created_at_min: str | None = None
    created_at_max: str | None = None
    updated_at_min: str | None = None
    updated_at_max: str | None = None
    exported_at_min: str | None = None
    exported_at_max: str | None = None
    user_data: bool = True
    exported: bool = True
    include: list[ORDER_INCLUDES] = []
    customer_include: list[Literal["employees"]] = []
    timezone: ZoneName = "Europe/Oslo"
    lookback_seconds: int = Field(300, ge=0, description="overlap re-read on each incremental run, for clock skew")
    sweep_days: int = Field(7, ge=0, le=3650, description="every order is read again within this many days (0: off)")

    @field_validator(
        "created_at_min", "created_at_max", "updated_at_min", "updated_at_max", "exported_at_min", "exported_at_max"
    )
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _DATE.match(value):
            raise ValueError(f"'{value}' is not a date: use yyyy-mm-dd or yyyy-mm-dd hh:mm:ss")
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a real date: use yyyy-mm-dd or yyyy-mm-dd hh:mm:ss") from None
        return value

