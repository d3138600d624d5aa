"""Prio source settings: OAuth2 credentials, the incremental plan's knobs and every documented filter.

Dates are validated here, before any request: Prio wants RFC 3339 with an offset and refuses a ``Z`` suffix, so a
``Z`` given in the configuration is accepted and sent as ``+00:00``; a date without any zone is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from ordersync.apis.base import SourceSettings

ORDER_STATUSES = ("ORDER_CONFIRMED", "ORDER_PENDING", "ORDER_CANCELLED", "ORDER_PARTIALLY_CANCELLED", "ORDER_BLOCKED")
OrderStatus = Literal["ORDER_CONFIRMED", "ORDER_PENDING", "ORDER_CANCELLED", "ORDER_PARTIALLY_CANCELLED",
                      "ORDER_BLOCKED"]
ViewType = Literal["DISTRIBUTOR", "RESELLER", "MARKET_ADMIN", "SUPPLIER"]
DEFAULT_BASE_URL = "https://sandbox-distributor-api.prioticket.com/v3.4/distributor"
DATE_SETTINGS = ("order_created_from", "order_created_to", "order_modified")


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 timestamp with a zone (``Z`` or an offset) as an aware UTC datetime; ValueError otherwise."""
    text = value.strip()
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"'{value}' is not an RFC 3339 date such as 2024-01-31T00:00:00+00:00")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not an RFC 3339 date such as 2024-01-31T00:00:00+00:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"'{value}' has no offset; Prio needs one, e.g. {text}+00:00")
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """How the client writes a date for Prio: UTC with milliseconds and ``+00:00`` (never ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class PrioSettings(SourceSettings):
    type: Literal["prio"]
    client_id: SecretStr
    client_secret: SecretStr
    base_url: str = DEFAULT_BASE_URL
    scope: str | None = Field(None, description="OAuth2 scope to ask for; none: the client's default scope")
    streams: list[Literal["orders"]] = ["orders"]
    concurrency: int = Field(4, ge=1, le=32, description="requests in flight at once: pages of a creation range "
                                                         "(by index, checked by keyset) and the next ranges")
    items_per_page: int = Field(100, ge=1, le=1000, description="page size asked for; the server may answer less")
    window_days: int = Field(365, ge=1, le=3660, description="days of order creation per request range")
    lookback_seconds: int = Field(300, ge=0, description="overlap re-read on each incremental run, for clock skew")
    token_margin_seconds: float = Field(60.0, ge=0, description="renew the token this long before it expires")
    # --- documented filters ------------------------------------------------------------------------------
    order_created_from: str = Field("2015-01-01T00:00:00+00:00", description="start of the first run (creation)")
    order_created_to: str | None = None
    order_modified: str | None = None
    reseller_id: int | None = Field(None, ge=0)
    distributor_id: int | None = Field(None, ge=0)
    market_admin_id: int | None = Field(None, ge=0)
    supplier_id: int | None = Field(None, ge=0)
    order_reference: str | None = None
    order_external_reference: str | None = None
    order_status: OrderStatus | None = None
    order_contact_uid: str | None = None
    order_contact_name: str | None = None
    order_contact_email: str | None = None
    booking_reference: str | None = None
    booking_external_reference: str | None = None
    product_id: str | None = None
    product_type_code: int | None = Field(None, ge=0)
    product_availability_id: int | None = Field(None, ge=0)
    product_availability_capacity_id: int | None = Field(None, ge=0)
    order_created_email: str | None = None
    cache: bool | None = None
    order_search_query: str | None = None
    filter_bookings: bool | None = None
    order_view_type: ViewType | None = None

    @field_validator(*DATE_SETTINGS)
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return None if value is None else rfc3339(parse_rfc3339(value))

    @field_validator("order_reference", "order_external_reference", "order_contact_uid", "order_contact_name",
                     "order_contact_email", "booking_reference", "booking_external_reference", "product_id",
                     "order_created_email", "order_search_query", "scope")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; remove the setting to not filter on it")
        return value

    # Field validators (not a model validator): an error then names its setting, and never echoes the whole
    # section, secrets included.
    @field_validator("order_search_query")
    @classmethod
    def _search_needs_cache(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("cache") is not True:
            raise ValueError("needs cache = true (Prio only searches on its caching server)")
        return value

    @field_validator("order_created_to")
    @classmethod
    def _after_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        start = info.data.get("order_created_from")
        if value is not None and start is not None and parse_rfc3339(value) < parse_rfc3339(start):
            raise ValueError(f"is before order_created_from ({start})")
        return value

    def created_from(self) -> datetime:
        return parse_rfc3339(self.order_created_from)

    def created_to(self) -> datetime | None:
        return parse_rfc3339(self.order_created_to) if self.order_created_to else None

    def modified_after(self) -> datetime | None:
        return parse_rfc3339(self.order_modified) if self.order_modified else None
