"""The neutral data of ordersync: vendor records, published rows, pages and typed stream state.

The engine, the store and every API import this module; it imports none of them (only pydantic, and
:mod:`ordersync.stateview`, which imports nothing of ordersync), so no import chain leads from the contract, the
engine or the store to the sandboxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, Literal, Self, TypedDict, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from ordersync.stateview import StateView

Record = dict[str, Any]
"""One vendor record, exactly as parsed from the API's JSON."""

State = dict[str, Any]
"""A stream state as the store keeps it: a JSON object (see :class:`StreamState` for its typed form)."""


Lifecycle = Literal["pending", "paid", "partially_cancelled", "cancelled"]
"""Where an order stands, in one vocabulary for every API (``orders.lifecycle``; docs/lifecycle.md):

- ``pending``: it stands, but is not (yet) both confirmed and paid: awaiting approval, confirmation or payment;
- ``paid``: it stands, confirmed where the API confirms orders, and its money was taken (``is_paid``);
- ``partially_cancelled``: the vendor says part of it was cancelled; the rest stands;
- ``cancelled``: the vendor says the whole order was cancelled (or refused).

Each API's normalizer derives it from the vendor's own fields; ``status`` keeps the vendor's word. Null: a status
word ordersync does not know (it is counted nowhere rather than guessed).
"""

LIFECYCLES: Final[tuple[Lifecycle, ...]] = get_args(Lifecycle)

BY_PAYMENT: Final = "by payment"
"""In an API's status table: the status leaves the order standing, so its payment decides ``paid`` or ``pending``."""

StatusTable = dict[str | None, Lifecycle | Literal["by payment"]]
"""An API's vendor status word -> lifecycle (or :data:`BY_PAYMENT`). ``None`` stands for an API without status."""


def lifecycle_of(status: str | None, is_paid: bool | None, table: StatusTable) -> Lifecycle | None:
    """The lifecycle of an order with this vendor ``status`` and ``is_paid``: ``table``'s rule for the status;
    ``paid`` only when the money is known to be taken. A status the table does not hold gives None."""
    rule = table.get(status)
    if rule == BY_PAYMENT:
        return "paid" if is_paid is True else "pending"
    return rule


class OrderRow(TypedDict):
    """One row of ``orders`` (``source`` and ``synced_at`` are added by the store).

    ``lifecycle`` and ``adjustment_minor`` (schema 5) say what ``status`` and the amounts mean across APIs: the
    order's :data:`Lifecycle`, and the part of ``total_minor`` that no line holds (order-level fees, surcharges
    and tax added on top, minus order-level discounts), from the vendor's own order-level fields, so that
    ``total_minor = sum(order_lines.total_minor) + adjustment_minor`` where the vendor's data is consistent.
    """

    order_id: str
    api: str
    order_number: str | None
    status: str | None
    currency: str | None
    total_minor: int | None
    discount_minor: int | None
    tax_minor: int | None
    is_paid: bool | None
    customer_id: str | None
    customer_name: str | None
    customer_email: str | None
    created_at: datetime | None
    updated_at: datetime | None
    raw: Any
    lifecycle: Lifecycle | None
    adjustment_minor: int | None


class OrderLineRow(TypedDict):
    """One row of ``order_lines``. ``total_minor`` is the line's part of its order's ``total_minor``: after the
    line's own discounts, with VAT wherever the vendor gives it per line (docs/lifecycle.md, per API)."""

    order_id: str
    line_no: int
    line_id: str | None
    product_id: str | None
    name: str | None
    quantity: int | None
    unit_price_minor: int | None
    total_minor: int | None
    currency: str | None
    raw: Any


class CustomerRow(TypedDict):
    """One row of ``customers`` (``source`` and ``synced_at`` are added by the store)."""

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    country: str | None
    created_at: datetime | None
    updated_at: datetime | None
    raw: Any


class PaymentRow(TypedDict):
    """One row of ``payments``."""

    order_id: str
    payment_no: int
    method: str | None
    amount_minor: int | None
    currency: str | None
    raw: Any


Row = Mapping[str, Any]
"""Any published row, as the store handles them alike (the four types above are what normalizers produce)."""


@dataclass
class Rows:
    """Published rows produced from some records."""

    orders: list[OrderRow] = field(default_factory=list)
    order_lines: list[OrderLineRow] = field(default_factory=list)
    customers: list[CustomerRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        self.orders += other.orders
        self.order_lines += other.order_lines
        self.customers += other.customers
        self.payments += other.payments

    def count(self) -> int:
        return len(self.orders) + len(self.customers)

    @classmethod
    def latest(cls, parts: Iterable[Rows]) -> Rows:
        """The rows of several records, one version of each order (with its own lines and payments) and of each
        customer: the last one read. A page may hold the same record twice (a row repeated across a page shift, or
        a vendor's bug); its lines must then be stored once, not twice."""
        orders: dict[str, tuple[OrderRow, list[OrderLineRow], list[PaymentRow]]] = {}
        customers: dict[str, CustomerRow] = {}
        for part in parts:
            for order in part.orders:
                key = order["order_id"]
                orders.pop(key, None)
                orders[key] = (order, [r for r in part.order_lines if r["order_id"] == key],
                               [r for r in part.payments if r["order_id"] == key])
            for customer in part.customers:
                customers.pop(customer["customer_id"], None)
                customers[customer["customer_id"]] = customer
        rows = cls(customers=list(customers.values()))
        for order, lines, payments in orders.values():
            rows.orders.append(order)
            rows.order_lines += lines
            rows.payments += payments
        return rows


@dataclass
class Page:
    """Records of one stream, and the stream state that is true once they are stored."""

    records: list[Record]
    state: StreamState
    requests: int = 1
    rendered: list[bytes] | None = None  # each record as JSON text, when the paging loop already rendered it


class StreamState(BaseModel):
    """What a stream remembers between runs, typed per API, stored as JSON with the page it covers.

    ``version`` says which shape the JSON has: a state written by another version is not guessed at, the stream
    starts over (and says so). ``filters`` are the settings the state was built for: when they change, what the
    stream covers changed, so it starts over too and reads everything the new filters cover.
    """

    model_config = ConfigDict(extra="forbid")

    VERSION: ClassVar[int] = 1

    version: int = 0
    filters: dict[str, Any] = {}

    @classmethod
    def fresh(cls, filters: dict[str, Any]) -> Self:
        return cls(version=cls.VERSION, filters=filters)

    @classmethod
    def load(cls, stored: State | None, filters: dict[str, Any]) -> tuple[Self, str | None]:
        """The typed state from the stored JSON, or a fresh one with the reason why the stored one cannot be used."""
        if not stored:
            return cls.fresh(filters), None
        if "version" not in stored:  # written before states had a version: take what still means the same
            upgraded = cls.upgrade(stored)
            if upgraded is not None:
                stored = {**upgraded, "version": cls.VERSION, "filters": filters}
        if stored.get("version") != cls.VERSION:
            return cls.fresh(filters), "the stored state was written by another version of ordersync: reading " \
                                       "everything again"
        try:
            state = cls.model_validate(stored)
        except ValidationError:
            return cls.fresh(filters), "the stored state could not be read: reading everything again"
        if state.filters != filters:
            changed = sorted(k for k in {*filters, *state.filters} if filters.get(k) != state.filters.get(k))
            what = ", ".join(f"{k}: {state.filters.get(k)!r} -> {filters.get(k)!r}" for k in changed)
            return cls.fresh(filters), f"the filters changed since the last run ({what}): reading everything " \
                                       "the new filters cover"
        return state, None

    @classmethod
    def upgrade(cls, legacy: State) -> State | None:
        """This API's state from one written by ordersync 0.1 (no version), if it can be read safely; else None."""
        return None

    def dump(self) -> State:
        return self.model_dump(mode="json")

    def describe(self, zone: ZoneInfo) -> StateView:
        """What ``ordersync status`` says of this state, in the vendor's ``zone`` (:mod:`ordersync.stateview`):
        here nothing; the states of declared streams say how far their data reaches, and more."""
        return StateView()
