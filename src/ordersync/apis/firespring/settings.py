"""Firespring source settings: every documented filter, validated before any request is sent."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ordersync.apis.base import SourceSettings
from ordersync.settings_fields import FILTER

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
    model_config = ConfigDict(json_schema_extra={"source_name": "website"})

    type: Literal["firespring"] = Field(description="This section reads the Firespring API.")
    api_key: SecretStr = Field(description="The Firespring API key, sent as the HTTP Basic user name with an empty "
                               "password.")
    website_id: int = Field(ge=1, examples=[4], description="The website whose orders are read (the :website_id of "
                            "the path). Several websites are several sources.")
    base_url: str = Field("https://api.firespring.com", description="Firespring's address. Point it at a sandbox "
                          "(ordersync serve firespring) to try things.")
    streams: list[Literal["orders"]] = Field(["orders"], description="The streams to sync: Firespring has one, "
                                             "orders. Each order carries its items, payments and website user.")
    api_version: Literal[1, 2] = Field(1, description="Sent as the Firespring-Api-Version header.")
    count: int = Field(MAX_COUNT, ge=1, le=MAX_COUNT, description="Orders per page. The API's maximum is 100.")
    includes: list[INCLUDE] = Field([], examples=[["notes", "shipments.shipping_carrier"]],
                                    description="Extra includes, kept in raw. The client always asks for "
                                                f"{', '.join(REQUIRED_INCLUDES)}: the published tables are made of "
                                                "them.")
    sort: Literal["date_created", "message.message_tracking_number", "user.username"] = Field(
        "date_created", description="The field the pages are sorted by.")
    direction: Literal["asc", "desc"] = Field("asc", description="The order of the pages. With asc and sort = "
                                              "date_created, an order created during a run comes after the pages "
                                              "read, so no page shifts.")
    lookback_days: int = Field(30, ge=0, le=3650, description="Creation days re-read on each incremental run. This "
                               "is how status changes of recent orders are seen: Firespring gives orders no "
                               "modification time.")
    sweep_days: int = Field(7, ge=0, le=3650, description="Older orders are read again within this many days, to "
                            "see their late changes. 0: off.")
    status: STATUS | None = Field(None, json_schema_extra=FILTER, examples=["shipped"],
                                  description="Only orders with this status.")
    search: str | None = Field(None, min_length=1, json_schema_extra=FILTER, examples=["xyzcorp"],
                               description="Only orders whose message tracking number or user name contains this "
                                           "text.")
    date_start: str | None = Field(None, json_schema_extra=FILTER, examples=["2024-01-01"],
                                   description="Only orders created on or after this day, written YYYY-MM-DD.")
    date_end: str | None = Field(None, json_schema_extra=FILTER, examples=["2025-01-01"],
                                 description="Only orders created before this day, written YYYY-MM-DD; after "
                                             "date_start.")

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
