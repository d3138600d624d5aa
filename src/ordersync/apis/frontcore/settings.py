"""Frontcore source settings: every documented filter, validated before any request is sent."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, SecretStr, field_validator

from ordersync.apis.base import SourceSettings, ZoneName
from ordersync.settings_fields import FILTER

MAX_LIMIT = 250
ORDER_INCLUDES = Literal["lines.database_relations.course", "lines.database_relations.participants", "campaign"]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")
_DATES = "Written yyyy-mm-dd or yyyy-mm-dd hh:mm:ss, local time of timezone."


def _date_filter(what: str, example: str) -> Any:
    return Field(None, json_schema_extra=FILTER, examples=[example], description=f"Only {what}. {_DATES}")


class FrontcoreSettings(SourceSettings):
    model_config = ConfigDict(json_schema_extra={"source_name": "courses"})

    type: Literal["frontcore"] = Field(description="This section reads the Frontcore API v2.")
    api_key: SecretStr = Field(description="The Frontcore API key, sent as the X-API-Key header.")
    base_url: str = Field("https://api.frontcore.com/v2", description="Frontcore's address. Point it at a sandbox "
                          "(ordersync serve frontcore) to try things.")
    requests_per_second: float | None = Field(5.0, gt=0, description="Requests per second at most, evenly spaced. "
                                              "Frontcore allows 5 per second per account.")
    streams: list[Literal["orders", "customers"]] = Field(["orders", "customers"], description="The streams to "
                                                          "sync: orders, customers or both.")
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT, description="Records per page. The API's maximum is 250 (its "
                       "own default, 75).")
    user_data: bool = Field(True, description="The users (participants) on each order line. The API's default, "
                            "false, leaves them out; ordersync asks for them unless this is false.")
    include: list[ORDER_INCLUDES] = Field([], examples=[list(get_args(ORDER_INCLUDES))], description="Extra objects "
                                          "on each order, kept in raw.")
    customer_include: list[Literal["employees"]] = Field([], examples=[["employees"]], description="Extra objects on "
                                                         "each customer, kept in raw. Frontcore adds employees to "
                                                         "private customers anyway.")
    timezone: ZoneName = Field("Europe/Oslo", description="The zone the date filters are written and sent in. "
                               "Frontcore reads them as Oslo time. An IANA name, checked when the file is read.")
    lookback_seconds: int = Field(300, ge=0, description="Seconds re-read before the time cursor on each "
                                  "incremental run, for clock skew.")
    sweep_days: int = Field(7, ge=0, le=3650, description="Every order is read again within this many days. This "
                            "is how a change that does not move updated_at is seen. 0: off.")
    exported: bool = Field(True, json_schema_extra=FILTER, description="Keep the orders exported to accounting. The "
                           "API's default, false, hides them: ordersync asks for them unless this is false.")
    course_id: int | None = Field(None, json_schema_extra=FILTER, examples=[22353], description="Only orders with "
                                  "at least one line for this course.")
    since_id: int | None = Field(None, ge=0, json_schema_extra=FILTER, examples=[1000], description="Only orders "
                                 "and customers with an id above this one.")
    created_at_min: str | None = _date_filter("orders and customers created after this moment", "2024-01-01")
    created_at_max: str | None = _date_filter("orders and customers created before this moment", "2025-01-01")
    updated_at_min: str | None = _date_filter("orders and customers last updated after this moment", "2024-01-01")
    updated_at_max: str | None = _date_filter("orders and customers last updated before this moment", "2025-01-01")
    exported_at_min: str | None = _date_filter("orders last exported after this moment", "2024-01-01")
    exported_at_max: str | None = _date_filter("orders last exported before this moment", "2025-01-01")

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

