"""Prio source settings: OAuth2 credentials, the incremental plan's knobs and every documented filter.

Dates are validated here, before any request: Prio wants RFC 3339 with an offset and refuses a ``Z`` suffix, so a
``Z`` given in the configuration is accepted and sent as ``+00:00``; a date without any zone is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ordersync.apis.base import SourceSettings
from ordersync.settings_fields import FILTER

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


_RFC3339 = "Written RFC 3339 with Z or an offset, e.g. 2024-01-31T00:00:00+00:00; sent as UTC."


def _filter(example: Any, description: str, **limits: Any) -> Any:
    """A documented filter: unset by default (not sent), ``example`` shown in the template."""
    return Field(None, json_schema_extra=FILTER, examples=[example], description=description, **limits)


class PrioSettings(SourceSettings):
    model_config = ConfigDict(json_schema_extra={"source_name": "tickets"})

    type: Literal["prio"] = Field(description="This section reads the Prio (Prioticket) Distributor API v3.")
    client_id: SecretStr = Field(description="The OAuth2 client id of your Prio credentials.")
    client_secret: SecretStr = Field(description="The OAuth2 client secret of your Prio credentials.")
    base_url: str = Field(DEFAULT_BASE_URL, description="Prio's address. The default is Prio's own test "
                          "environment; your production address comes with your credentials.")
    scope: str | None = Field(None, examples=["..."], description="The OAuth2 scope to ask for, if your credentials "
                              "need one. None: no scope is asked for.")
    streams: list[Literal["orders"]] = Field(["orders"], description="The streams to sync: Prio has one, orders. "
                                             "Each order carries its contacts and payments.")
    concurrency: int = Field(4, ge=1, le=32, description="Requests in flight at once. Pages of a creation range "
                                                         "(by index, checked by keyset) and the next ranges.")
    items_per_page: int = Field(100, ge=1, le=1000, description="Orders per page asked for. The server may answer "
                                "with fewer: the answer's own page size is used.")
    window_days: int = Field(365, ge=1, le=3660, description="Days of order creation per request range.")
    lookback_seconds: int = Field(300, ge=0, description="Seconds re-read before the last run's end, for clock "
                                  "skew.")
    token_margin_seconds: float = Field(60.0, ge=0, description="Renew the access token this many seconds before it "
                                        "expires. At most a tenth of its lifetime is used.")
    cache: bool | None = Field(None, examples=[True], description="Read from Prio's caching server. Prio "
                               "recommends it as much faster; order_search_query needs it. None: not sent (Prio's "
                               "default).")
    order_view_type: ViewType | None = Field(None, examples=["DISTRIBUTOR"], description="The account view to read "
                                             "as. None: not sent; Prio defaults it to, and limits it by, the scope "
                                             "of your credentials.")
    # --- documented filters ------------------------------------------------------------------------------
    order_created_from: str = Field("2015-01-01T00:00:00+00:00", json_schema_extra=FILTER,
                                    description=f"Where the first run starts: orders created at or after this "
                                                f"moment. {_RFC3339}")
    order_created_to: str | None = _filter("2030-01-01T00:00:00+00:00", "Only orders created until this moment, "
                                           f"not before order_created_from. None: up to now. {_RFC3339}")
    order_modified: str | None = _filter("2024-01-01T00:00:00+00:00", "Only orders modified after this moment, new "
                                         f"ones included. {_RFC3339}")
    reseller_id: int | None = _filter(1300, "Only orders of this reseller.", ge=0)
    distributor_id: int | None = _filter(501, "Only orders of this distributor.", ge=0)
    market_admin_id: int | None = _filter(1, "Only orders of this market admin.", ge=0)
    supplier_id: int | None = _filter(1, "Only orders of this supplier.", ge=0)
    order_reference: str | None = _filter("ORDRREF123456", "Only the order with this reference.")
    order_external_reference: str | None = _filter("EXTERNALREF123", "Only orders with this external reference.")
    order_status: OrderStatus | None = _filter("ORDER_CONFIRMED", "Only orders with this status.")
    order_contact_uid: str | None = _filter("CONTACT-UID", "Only orders of the contact with this uid.")
    order_contact_name: str | None = _filter("Smith", "Only orders whose contact has this name (first, last or "
                                             "whole).")
    order_contact_email: str | None = _filter("guest@example.com", "Only orders whose contact has this e-mail.")
    booking_reference: str | None = _filter("BOOKINGREF123", "Only orders with a booking of this reference.")
    booking_external_reference: str | None = _filter("EXTERNALREF123", "Only orders with a booking of this "
                                                     "external reference.")
    product_id: str | None = _filter("40100", "Only orders with a booking of this product.")
    product_type_code: int | None = _filter(1, "Only orders with a booking of this product type code.", ge=0)
    product_availability_id: int | None = _filter(1, "Only orders with a booking of this availability.", ge=0)
    product_availability_capacity_id: int | None = _filter(1, "Only orders with a booking of this availability "
                                                           "capacity.", ge=0)
    order_created_email: str | None = _filter("cashier@example.com", "Only orders made by this user or cashier.")
    order_search_query: str | None = _filter("smith*", "Only orders matching this full-text search (wildcards "
                                             "allowed). Needs cache = true.")
    filter_bookings: bool | None = _filter(True, "Keep only the bookings that match the booking and product "
                                           "filters. None or false: every booking of a matching order.")

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
