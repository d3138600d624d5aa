"""``ordersync.toml`` -> typed settings. ``${VAR}`` is read from the environment, so secrets stay out of files."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordersync import apis
from ordersync.apis.base import SourceSettings
from ordersync.errors import ConfigError
from ordersync.explain import remember_secret, url_password
from ordersync.store import bounds
from ordersync.store.urls import destination_problem

DEFAULT_PATH = "ordersync.toml"
DEFAULT_DESTINATION = "sqlite:///orders.db"
DEFAULT_LOCK_WAIT = 30.0
MAX_LOCK_WAIT = 86_400
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _pg_bound(name: str, description: str) -> Any:
    """A field of one of PostgreSQL's bounds, its default and limits as :mod:`ordersync.store.bounds` checks them."""
    low, high = bounds._LIMITS[name]
    return Field(bounds.DEFAULTS[name], ge=low, le=high, description=description + " PostgreSQL only.")


class DestinationSettings(BaseModel):
    """The ``[destination]`` section: its settings, defaults and descriptions, for the reference page and the
    ``init`` template. :func:`parse` checks the section itself (each refusal is one line naming the setting)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        DEFAULT_DESTINATION, examples=["postgresql://ordersync@db.example.com:5432/orders?sslmode=require",
                                       "duckdb:///orders.duckdb"],
        description="Where the tables are written: SQLite, PostgreSQL or DuckDB. Written sqlite:///PATH, "
                    "postgresql://USER@HOST:5432/DB or duckdb:///PATH; the default is orders.db in the current "
                    "folder. A PostgreSQL password is written as ${VAR} (it is %-encoded and never shown), or comes "
                    "from PGPASSWORD or ~/.pgpass.")
    schema_name: str | None = Field(
        None, alias="schema", examples=["ordersync"],
        description="The schema that holds every table, created on first use. PostgreSQL only. None: the "
                    "connection's default (public).")
    lock_wait_seconds: float = Field(DEFAULT_LOCK_WAIT, ge=0, le=MAX_LOCK_WAIT,
                                     description="Seconds a sync waits for another sync of the same source. "
                                                 "When they have passed, it refuses to start.")
    connect_timeout_seconds: float = _pg_bound(
        "connect_timeout_seconds", "Seconds connecting may take (libpq's connect_timeout).")
    statement_timeout_seconds: float = _pg_bound(
        "statement_timeout_seconds", "Seconds one statement may run (the server's statement_timeout). Also how "
        "long ordersync waits for any answer of the server: a frozen server fails the sync with one line.")
    lock_timeout_seconds: float = _pg_bound(
        "lock_timeout_seconds", "Seconds a statement waits for a lock another session holds. The server's "
        "lock_timeout.")


_DESTINATION_SETTINGS = tuple(f.alias or name for name, f in DestinationSettings.model_fields.items())


@dataclass(frozen=True)
class Config:
    path: Path | None
    destination: str  # the URL, ${VAR} expanded (it may hold a password: show it only through store.redact)
    sources: dict[str, SourceSettings]
    schema: str | None = None  # PostgreSQL schema for every table (created on first use)
    lock_wait: float = DEFAULT_LOCK_WAIT  # seconds a sync waits for another sync of the same source before it refuses
    bounds: tuple[tuple[str, float], ...] = ()  # PostgreSQL's timeouts as set (see ordersync.store.bounds)

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for ``open_store(cfg.destination, ...)``."""
        return {"schema": self.schema, "lock_wait": self.lock_wait, **dict(self.bounds)}


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("ORDERSYNC_CONFIG") or DEFAULT_PATH)


def load(explicit: str | None = None, *, secrets: bool = True) -> Config:
    """Read and validate the whole file. ``secrets=False``: a command that calls no API (``status``, ``export``,
    ``history``, ``dashboard``) does not need the sources' keys, so a secret setting whose ``${VAR}`` is not set
    is left unresolved instead of refused; everything else is validated all the same."""
    path = config_path(explicit)
    if not path.is_file():
        raise ConfigError(f"no configuration file at {path}: run 'ordersync init' to write one, or pass --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start} is not UTF-8): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path} could not be read: {exc.strerror or exc}") from None
    return parse(raw, path, secrets=secrets)


def parse(raw: dict[str, Any], path: Path | None = None, *, secrets: bool = True) -> Config:
    where = str(path) if path else "configuration"
    unknown = set(raw) - {"destination", "sources"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ConfigError(f"{where}: unknown section(s) {names}; use [destination] and [sources.NAME]")
    destination = raw.get("destination", {})
    if not isinstance(destination, dict) or set(destination) - set(_DESTINATION_SETTINGS):
        raise ConfigError(f"{where}: [destination] takes the settings {', '.join(_DESTINATION_SETTINGS)}, "
                          'e.g. url = "sqlite:///orders.db"')
    url = destination_url(destination.get("url", DEFAULT_DESTINATION))
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"{where}: [destination] url must look like sqlite:///PATH, "
                          "postgresql://USER@HOST:5432/DB or duckdb:///PATH")
    problem = destination_problem(url)
    if problem:
        raise ConfigError(f"{where}: [destination] url {problem}")
    schema = destination.get("schema")
    if schema is not None and (not isinstance(schema, str) or not SCHEMA.match(schema)):
        raise ConfigError(f"{where}: [destination] schema must be a plain name (letters, digits, _), got {schema!r}")
    if schema is not None and not url.startswith(("postgresql", "postgres:")):
        raise ConfigError(f"{where}: [destination] schema applies to PostgreSQL urls only; remove it")
    lock_wait = destination.get("lock_wait_seconds", DEFAULT_LOCK_WAIT)
    if isinstance(lock_wait, bool) or not isinstance(lock_wait, int | float) or not 0 <= lock_wait <= MAX_LOCK_WAIT:
        raise ConfigError(f"{where}: [destination] lock_wait_seconds must be a number of seconds "
                          f"(0 to {MAX_LOCK_WAIT})")
    sources_raw = raw.get("sources", {})
    if not isinstance(sources_raw, dict) or not sources_raw:
        raise ConfigError(f"{where}: no sources; add a [sources.NAME] section with a type (see 'ordersync init')")
    sources = {name: parse_source(name, section, secrets=secrets) for name, section in sources_raw.items()}
    return Config(path, url, sources, schema, float(lock_wait), tuple(bounds.parse(destination, url, where).items()))


def parse_source(name: str, section: Any, *, secrets: bool = True) -> SourceSettings:
    if not isinstance(section, dict):
        raise ConfigError(f"[sources.{name}] must be a table of settings")
    known = ", ".join(sorted(apis.registry()))
    kind = section.get("type")
    if kind is None:
        raise ConfigError(f"[sources.{name}] has no type; set type to one of: {known}")
    if kind not in apis.registry():
        raise ConfigError(f"[sources.{name}] type '{kind}' is unknown; use one of: {known}")
    model = apis.get(kind).settings
    optional = set() if secrets else model.secret_settings()
    values = {key: _expand(value, f"[sources.{name}] {key}", key in optional) for key, value in section.items()}
    try:
        settings = model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError("\n".join(_explain(name, model, exc))) from None
    except (ArithmeticError, UnicodeError) as exc:  # a validator's own arithmetic: still a refused setting
        raise ConfigError(f"[sources.{name}] a setting is out of range ({type(exc).__name__}: {exc})") from None
    for secret in settings.secrets():
        remember_secret(secret)
    return settings


UNRESOLVED = "unresolved-secret"
"""What an unset ``${VAR}`` of a secret setting becomes when the command needs no secrets (never sent)."""


def _expand(value: Any, where: str, missing_ok: bool = False) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                if missing_ok:
                    return UNRESOLVED
                raise ConfigError(f"{where} needs the environment variable {var}, which is not set; export it first")
            return os.environ[var]

        return _VAR.sub(replace, value)
    if isinstance(value, list):
        return [_expand(v, where, missing_ok) for v in value]
    return value


def destination_url(template: Any) -> Any:
    """The destination URL with its ``${VAR}`` read from the environment. A variable in the user-and-password
    part is %-encoded (a password holding ``@ : / #`` would otherwise be read as the host, port or database, and
    its tail shown as one); the password is remembered, so that no message ever shows it."""
    if not isinstance(template, str):
        return template
    start = template.find("://") + 3 if "://" in template else 0
    authority_end = template.find("/", start)
    at = template.rfind("@", start, authority_end if authority_end >= 0 else len(template))
    pieces: list[str] = []
    position = 0
    for match in _VAR.finditer(template):
        value = _expand(match.group(0), "[destination] url")
        pieces.append(template[position:match.start()])
        in_userinfo = start <= match.start() < at
        pieces.append(quote(value, safe="") if in_userinfo else value)
        if in_userinfo:
            remember_secret(value)
        position = match.end()
    url = "".join(pieces) + template[position:]
    remember_secret(url_password(url))
    return url


def _explain(name: str, model: type[SourceSettings], exc: ValidationError) -> list[str]:
    lines = []
    secrets = model.secret_settings()  # decided by type (SecretStr), not by words in the name
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        setting = str(err["loc"][0]) if err["loc"] else ""
        secret = setting in secrets
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            lines.append(f"[sources.{name}] unknown setting '{loc}'; the settings of this type are: {allowed}")
        elif err["type"] == "missing":
            lines.append(f"[sources.{name}] the setting '{loc}' is required")
        else:
            got = "" if secret or not err["loc"] else f" (got {err['input']!r})"
            message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix tells a user nothing
            lines.append(f"[sources.{name}] {loc}: {message}{got}")
    return lines

