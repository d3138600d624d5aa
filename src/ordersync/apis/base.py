"""The contract between the engine and one API folder.

An API folder provides a :class:`SourceSettings` model (every documented filter as a validated setting), a
:class:`SourceClient` (requests, auth, paging and the incremental plan, yielding :class:`Page` objects whose
``state`` is safe to store once the page's rows are written), a normalizer (vendor record -> published rows)
and a :class:`~ordersync.sandbox.app.Sandbox`. It registers them as one :class:`ApiSpec` named ``API``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from ordersync.http import HttpClient, HttpSettings
from ordersync.sandbox.app import Sandbox, SandboxOptions
from ordersync.schedule import Schedule


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not a time zone name such as Europe/Oslo or Europe/Zurich") from None
    return value


ZoneName = Annotated[str, AfterValidator(_zone_name)]
"""A setting that names an IANA time zone, validated when the configuration is read."""

Record = dict[str, Any]
Row = dict[str, Any]
State = dict[str, Any]


class SourceSettings(BaseModel):
    """Settings every source has; an API's model adds its own and its filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    base_url: str
    timeout: float = Field(30.0, gt=0, description="seconds before one request is abandoned and retried")
    max_retries: int = Field(5, ge=0, le=20, description="retries of a failed request before the run fails")
    requests_per_second: float | None = Field(None, gt=0, description="request rate limit, evenly spaced")
    concurrency: int = Field(4, ge=1, le=32, description="requests in flight at once, where the API allows it")
    schedule: Schedule | None = Field(None, description="when an orchestrator syncs it: 15m, 1h or a cron expression")

    def http_settings(self) -> HttpSettings:
        return HttpSettings(
            timeout=self.timeout,
            max_retries=self.max_retries,
            requests_per_second=self.requests_per_second,
            max_connections=max(self.concurrency, 2),
        )

    def secrets(self) -> list[str]:
        """Every secret value in these settings, so that the HTTP layer can redact them."""
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]


@dataclass
class Page:
    """Records of one stream, and the stream state that is true once they are stored."""

    records: list[Record]
    state: State
    requests: int = 1


@dataclass
class Rows:
    """Published rows produced from some records (``source`` and ``synced_at`` are added by the store)."""

    orders: list[Row] = field(default_factory=list)
    order_lines: list[Row] = field(default_factory=list)
    customers: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)

    def extend(self, other: Rows) -> None:
        self.orders += other.orders
        self.order_lines += other.order_lines
        self.customers += other.customers
        self.payments += other.payments

    def count(self) -> int:
        return len(self.orders) + len(self.customers)


class SourceClient(ABC):
    """Downloads the streams of one configured source."""

    streams: ClassVar[tuple[str, ...]]

    def __init__(self, source: str, settings: Any, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.source = source
        self.settings = settings
        self.http = self.make_http(transport)

    @abstractmethod
    def make_http(self, transport: httpx.AsyncBaseTransport | None) -> HttpClient:
        """The HTTP client with this API's auth, headers and secrets."""

    @abstractmethod
    def read(self, stream: str, state: State | None, full_refresh: bool) -> AsyncIterator[Page]:
        """Pages of ``stream``, resuming from ``state`` (None: first run); each page's state is storable."""

    @abstractmethod
    def normalize(self, stream: str, records: list[Record]) -> Rows:
        """Published rows for records of ``stream``."""

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True)
class ApiSpec:
    name: str
    title: str
    settings: type[SourceSettings]
    client: type[SourceClient]
    sandbox: Callable[[SandboxOptions], Sandbox]
    config_example: str  # the commented TOML section written by ``ordersync init``
