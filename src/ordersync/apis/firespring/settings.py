"""Firespring source settings: every documented filter, validated before any request is sent."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from ordersync.apis.base import SourceSettings

MAX_COUNT = 100
STATUS = Literal["pending_approval", "new", "denied", "processing", "canceled", "backordered", "shipped", "completed"]
INCLUDE = Literal[
    "additional_information", "billing_address", "items", "items.attributes", "items.portal",
    "items.print_ready_files", "message", "notes", "payment_transactions", "portal", "promo_code", "shipments",
    "shipments.shipping_address", "shipments.shipping_carrier", "shipments.shipping_method", "user",
]
# What the published tables are made of: always asked for, whatever ``includes`` says.
REQUIRED_INCLUDES = ("billing_address", "items", "message", "payment_transactions", "user")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FirespringSettings(SourceSettings):
    type: Literal["firespring"]
    api_key: SecretStr
    website_id: int = Field(ge=1, description="the website whose orders are read (the path's :website_id)")
    base_url: str = "https://api.firespring.com"
    api_version: Literal[1, 2] = Field(1, description="sent as the Firespring-Api-Version header")
    count: int = Field(MAX_COUNT, ge=1, le=MAX_COUNT, description="orders per page (the API's maximum is 100)")
    status: STATUS | None = None
    includes: list[INCLUDE] = Field([], description="extra includes, kept in raw; the client adds what it needs")
    sort: Literal["date_created", "message.message_tracking_number", "user.username"] = "date_created"
    direction: Literal["asc", "desc"] = Field("asc", description="asc (ours) keeps new orders at the end while paging")
    search: str | None = Field(None, min_length=1)
    date_start: str | None = Field(None, description="YYYY-MM-DD: ignore orders created before this day")
    date_end: str | None = Field(None, description="YYYY-MM-DD: ignore orders created on or after this day")
    lookback_days: int = Field(30, ge=0, le=3650, description="creation days re-read on each incremental run")
    sweep_days: int = Field(7, ge=0, le=3650, description="older history is re-read within this many days (0: off)")

    @field_validator("date_start", "date_end")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a date in the YYYY-MM-DD format") from None
        return value

    @field_validator("date_end")
    @classmethod
    def _range(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A field validator, not a model one: a model-level error would echo every setting, the key included."""
        start = info.data.get("date_start")
        if value and start and value <= start:
            raise ValueError(f"date_end ({value}) must be after date_start ({start})")
        return value

    def all_includes(self) -> str:
        """The ``includes`` parameter: the configured ones plus those the published tables need."""
        return ",".join(sorted({*self.includes, *REQUIRED_INCLUDES}))
