"""The contract between the engine and one API folder.

An API folder provides a :class:`SourceSettings` model (every documented filter as a validated setting), a
:class:`SourceClient` that *declares* its streams (a :class:`ordersync.paging.Stream` subclass each: passes, cursor,
typed state, normalizer) and turns one request into an :class:`~ordersync.paging.Answer`. It registers them as
one :class:`ApiSpec` named ``API``. The API's sandbox lives apart, in ``ordersync.sandbox.<name>``, and nothing in
``ordersync.apis`` refers to it: the sync path never loads a sandbox, Starlette or Faker.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ordersync.http import MB, HttpClient, HttpSettings
from ordersync.model import Page, Record, Rows, State, StreamState  # noqa: F401  (re-exported for API folders)
from ordersync.schedule import Schedule

if TYPE_CHECKING:
    from ordersync.paging import Answer, Request, Stream


def _zone_name(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not a time zone name such as Europe/Oslo or Europe/Zurich") from None
    return value


ZoneName = Annotated[str, AfterValidator(_zone_name)]
"""A setting that names an IANA time zone, validated when the configuration is read."""


class SourceSettings(BaseModel):
    """Settings every source has; an API's model adds its own and its filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="The API this section reads: the name of its folder under ordersync.apis.")
    base_url: str = Field(description="The API's address; point it at a sandbox (ordersync serve) to try things.")
    timeout: float = Field(30.0, gt=0, description="Seconds one whole request may take before it is abandoned and "
                           "retried. Headers and body together, not each read: a server sending a byte a second is "
                           "cut off too.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a failed request before the run fails. "
                             "Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff "
                             "and jitter; a Retry-After header is honoured.")
    requests_per_second: float | None = Field(None, gt=0, examples=[5], description="Requests per second at most, "
                                              "evenly spaced. The vendor's limit is kept without waiting for 429 "
                                              "answers. None: no limit of ours.")
    concurrency: int = Field(4, ge=1, le=32, description="Requests in flight at once, where the API allows reading "
                             "ahead.")
    schedule: Schedule | None = Field(None, examples=["15m", "*/15 * * * *"], description="When an orchestrator "
                                      "syncs this source: an interval or a cron expression. An interval "
                                      "(15m, 2h, 1d) must divide an hour or a day; a cron expression is in UTC. "
                                      "None: no schedule of its own.")
    streams: Sequence[str] = Field(("orders",), description="The streams to sync, in order.")  # each API narrows it
    max_body_mb: float = Field(64, gt=0, description="An answer larger than this many megabytes is refused, not "
                               "read whole. As sent or decoded: a gzip bomb is refused while it is inflated.")
    max_record_mb: float = Field(16, gt=0, description="A single record larger than this, in megabytes, is not "
                                 "stored. The run stops before its page, naming it.")

    @field_validator("*", mode="after")
    @classmethod
    def _clean_secret(cls, value: Any) -> Any:
        """A secret pasted with a line break or a space around it would be sent as it is (and echoed by the
        HTTP library's error): refuse it here, naming the setting (``_explain`` never shows a secret's value)."""
        if isinstance(value, SecretStr):
            problem = secret_problem(value.get_secret_value())
            if problem:
                raise ValueError(f"the secret {problem}; check the variable's value (not shown here)")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number finite (``inf`` and ``nan`` pass pydantic's ``gt=0``, then break rate limits and clocks)
        and every duration within what a clock can add: checked here, once, for the settings of every API."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        limit = _LIMITS.get(info.field_name or "")
        if limit is not None and isinstance(value, int | float) and value > limit[0]:
            raise ValueError(f"must be at most {limit[0]:,} ({limit[1]})")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _plausible_year(cls, value: Any) -> Any:
        """A date setting in year 1 or 9999 is a slip, and moving it by an offset, a window or a look-back leaves
        the calendar (``OverflowError`` deep in a sync): refuse it when the file is read, whatever the API."""
        if isinstance(value, str) and (match := _DATE_START.match(value)):
            year = int(match.group(1))
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise ValueError(f"the year {year} is out of range (dates are {MIN_YEAR} to {MAX_YEAR})")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("streams")
    @classmethod
    def _some_streams(cls, value: Sequence[str]) -> Sequence[str]:
        if not value:
            raise ValueError("is empty, so nothing would be synced; name at least one stream, or remove the setting "
                             "for all of them")
        return value

    def stream_names(self) -> list[str]:
        """The streams these settings ask for, in order (a sync reads them, Dagster declares their assets)."""
        return list(self.streams)

    def http_settings(self) -> HttpSettings:
        return HttpSettings(
            timeout=self.timeout,
            max_retries=self.max_retries,
            requests_per_second=self.requests_per_second,
            max_connections=max(self.concurrency, 2),
            max_body_bytes=int(self.max_body_mb * MB),
        )

    @property
    def max_record_bytes(self) -> int:
        return int(self.max_record_mb * MB)

    def secrets(self) -> list[str]:
        """Every secret value in these settings (its type is ``SecretStr``), so that the HTTP layer can redact them."""
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]

    @classmethod
    def secret_settings(cls) -> set[str]:
        """The names of the settings that hold secrets: those typed ``SecretStr``, whatever they are called."""
        return {name for name, f in cls.model_fields.items() if _is_secret(f.annotation)}


MIN_YEAR, MAX_YEAR = 1900, 9000
_DATE_START = re.compile(r"^\s*(\d{4})-\d{2}-\d{2}")
_LIMITS: dict[str, tuple[float, str]] = {
    "timeout": (86_400, "a day, in seconds"),
    "requests_per_second": (10_000, "requests per second"),
    "max_body_mb": (4_096, "megabytes"),
    "max_record_mb": (4_096, "megabytes"),
    "lookback_seconds": (10 * 366 * 86_400, "ten years, in seconds"),
    "token_margin_seconds": (86_400, "a day, in seconds"),
    "max_window_days": (3_660, "ten years, in days"),
    "split_threshold": (1_000_000, "orders"),
}
"""Upper bounds shared by every API's settings of that name: beyond them a setting is a slip, and would overflow
a date or a timer (``lookback_seconds = 1e18``)."""


def url_problem(url: str) -> str | None:
    """What is wrong with an API base URL (scheme, host, port 1-65535, an IPv6 address in brackets), if anything."""
    example = "e.g. https://api.example.com/v2 or http://127.0.0.1:8000/v2"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return f"is not a URL (its port is not 1 to 65535, or an IPv6 address is broken): {example}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"is not an http(s) URL with a host: {example}"
    if port == 0:
        return "has port 0; a port is 1 to 65535"
    if parts.username or parts.password:
        return "must not hold a user or password: set the source's key settings instead"
    return None


def secret_problem(secret: str) -> str | None:
    """What is wrong with a secret's characters (empty, whitespace around it, control characters or characters
    that are not ASCII in it: keys are ASCII, and an HTTP header cannot carry others), if anything."""
    if not secret:
        return "is empty (an unset or empty variable?)"
    if not secret.isascii():
        return "holds a character that is not ASCII (a pasted typographic quote or dash?)"
    if secret != secret.strip():
        where = "ends" if secret[-1:].isspace() else "starts"
        return f"{where} with whitespace (a space or a line break)"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in secret):
        return "contains a control character"
    return None


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(a) for a in getattr(annotation, "__args__", ()))


@dataclass(frozen=True)
class HttpOptions:
    """How an API's requests are authenticated and labelled: what the client's HTTP layer is built from."""

    label: str
    secrets: list[str]
    auth_hint: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: httpx.Auth | None = None


class SourceClient(ABC):
    """Downloads the streams of one configured source: declares them, and answers one request at a time."""

    def __init__(self, source: str, settings: Any, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.source = source
        self.settings = settings
        self.notes: list[str] = []  # anomalies a pass met and worked around (one line each), for the run's notes
        options = self.http_options()
        self.http = HttpClient(settings.base_url, label=options.label, settings=settings.http_settings(),
                               headers=options.headers, auth=options.auth, secrets=options.secrets,
                               auth_hint=options.auth_hint, transport=transport)

    @abstractmethod
    def http_options(self) -> HttpOptions:
        """This API's auth, headers and secrets (pure: called once, by ``__init__``)."""

    @abstractmethod
    def streams(self) -> dict[str, Stream[Any]]:
        """Every stream this source can read, by name: an instance of each of the API's stream classes (see
        :class:`ordersync.paging.Stream`), which reads the settings and the client's notes through this client."""

    @abstractmethod
    async def fetch(self, request: Request) -> Answer:
        """Send one request of a paginator and read its answer."""

    def chosen_streams(self) -> list[str]:
        """The streams the settings ask for (all by default), in order."""
        return self.settings.stream_names()

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def redact(self, text: str) -> str:
        """``text`` with every secret of this source (and every token it was given) replaced by ``***``."""
        return self.http.redact(text)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True)
class ApiSpec:
    name: str
    title: str
    settings: type[SourceSettings]
    client: type[SourceClient]
    state: type[StreamState]  # the typed state of its streams (``ordersync status`` asks it to describe itself)
