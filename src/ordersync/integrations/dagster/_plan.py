"""What Dagster needs to know of a configuration when the definitions load: the sources, the tables each one
writes and its schedule, never its secrets.

The webserver, the daemon and each code location load the definitions; only the run worker syncs. So the
configuration is read twice: here with every ``${VAR}`` that is not set replaced by a placeholder (nothing is
sent with it), and in the run by :class:`~ordersync.integrations.dagster.OrdersyncResource`, for real.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ordersync import api
from ordersync import config as config_module
from ordersync.apis.base import SourceSettings
from ordersync.errors import ConfigError

TABLES = ("orders", "order_lines", "customers", "payments", "order_versions")
"""The published tables, in the order their assets are declared."""
ORDER_TABLES = ("orders", "order_lines", "payments", "order_versions")
"""What an orders stream writes: an order, its lines and payments replaced with it, and its versions."""
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PLACEHOLDER = "unset-at-load"


def read_raw(path: str | Path | None, data: Mapping[str, Any] | None) -> tuple[dict[str, Any], Path | None]:
    """The configuration as written (``${VAR}`` not yet read), from a file or a dict, and its path."""
    if data is not None:
        return copy.deepcopy(dict(data)), None
    file = config_module.config_path(str(path) if path is not None else None)
    if not file.is_file():
        raise ConfigError(f"no configuration file at {file}: run 'ordersync init' to write one, or pass its path")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8")), file
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{file} could not be read as UTF-8 TOML: {exc}") from None


def substitute(value: Any, values: Mapping[str, str], placeholder: bool) -> Any:
    """``value`` with each ``${VAR}`` that ``values`` or the environment holds filled in; a variable set nowhere
    becomes :data:`PLACEHOLDER` when ``placeholder``, else stays for the configuration reader to refuse by name."""
    if isinstance(value, str):
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            found = values.get(name, os.environ.get(name))
            return found if found is not None else PLACEHOLDER if placeholder else match.group(0)

        return _VAR.sub(fill, value)
    if isinstance(value, list):
        return [substitute(v, values, placeholder) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, values, placeholder) for k, v in value.items()}
    return value


def load(path: str | Path | None = None, data: Mapping[str, Any] | None = None, *,
         values: Mapping[str, str] | None = None, destination: str | None = None,
         placeholder: bool = False) -> api.Config:
    """Read a configuration: for real (``placeholder=False``, in a run), or without the secrets (at load)."""
    raw, file = read_raw(path, data)
    destination_raw = raw.setdefault("destination", {})
    if destination is not None and isinstance(destination_raw, dict):
        destination_raw["url"] = destination
    filled = substitute(raw, values or {}, placeholder)
    if placeholder and isinstance(destination_raw, dict) and isinstance(destination_raw.get("url"), str):
        filled["destination"]["url"] = _planned_url(destination_raw["url"], filled["destination"]["url"])
    return config_module.parse(filled, file)


def _planned_url(written: str, filled: str) -> str:
    """A destination URL whose variables are not all set: its scheme, when it is written out, is all a plan
    needs (the kind of database the assets are stored in)."""
    if PLACEHOLDER not in filled:
        return filled
    head = written.split("${", 1)[0]
    return f"{head.split('://', 1)[0]}://{PLACEHOLDER}" if "://" in head else f"unknown://{PLACEHOLDER}"


def plan(config: api.ConfigLike) -> api.Config:
    """The configuration as the definitions see it: validated, with placeholders where secrets are not set."""
    if isinstance(config, api.Config):
        return config
    if isinstance(config, Mapping):
        return load(data=config, placeholder=True)
    return load(config, placeholder=True)


def tables_by_stream(settings: SourceSettings) -> dict[str, tuple[str, ...]]:
    """The published tables each configured stream of a source writes. An API with a customers stream of its own
    (Frontcore) writes customers there; the others write an order's customer with the order."""
    own_customers = "customers" in api_streams(settings)
    written: dict[str, tuple[str, ...]] = {}
    for stream in settings.stream_names():
        if stream == "customers":
            written[stream] = ("customers",)
        else:
            written[stream] = ORDER_TABLES if own_customers else (*ORDER_TABLES, "customers")
    return written


def tables_of(settings: SourceSettings) -> list[str]:
    """The published tables a source writes, in :data:`TABLES` order: one asset each."""
    written = {t for tables in tables_by_stream(settings).values() for t in tables}
    return [t for t in TABLES if t in written]


def streams_writing(settings: SourceSettings, tables: Iterable[str]) -> list[str]:
    """The configured streams a sync of ``tables`` needs, in configuration order."""
    wanted = set(tables)
    return [s for s, written in tables_by_stream(settings).items() if wanted & set(written)]


def api_streams(settings: SourceSettings) -> list[str]:
    """Every stream the source's API has (its settings' default), whatever this source asks for."""
    default = type(settings).model_fields["streams"].default
    return list(default) if default is not None else list(settings.stream_names())


def narrowed(config: api.Config, source: str, streams: list[str]) -> api.Config:
    """The configuration of one source that reads only ``streams`` (a subset of its assets was selected)."""
    settings = config.sources[source].model_copy(update={"streams": streams})
    return replace(config, sources={source: settings})


def op_name(source: str) -> str:
    """The op that syncs a source: Dagster names take letters, digits and underscores only."""
    return "sync_" + re.sub(r"\W", "_", source)


def schedule_name(source: str) -> str:
    """The schedule of a source."""
    return "ordersync_" + re.sub(r"\W", "_", source)


def pool_name(source: str) -> str:
    """The concurrency pool of a source's assets: the source's name (pool names cannot hold white space)."""
    return re.sub(r"\s", "_", source)


def tag_value(source: str) -> str:
    """A source's name as a Dagster tag value (63 characters of letters, digits, ``_.-``)."""
    return re.sub(r"[^\w.-]", "_", source)[:63]


def check_names(sources: Iterable[str]) -> None:
    """Two sources whose Dagster names would collide are refused, naming both."""
    seen: dict[str, str] = {}
    for source in sources:
        other = seen.setdefault(op_name(source), source)
        if other != source:
            raise ConfigError(f"the sources '{other}' and '{source}' get the same Dagster name {op_name(source)}; "
                              "rename one of them (letters, digits and underscores are kept)")


@functools.cache
def shortest_gap(cron: str) -> timedelta:
    """The shortest time between two ticks of a cron schedule (UTC) over a week, with Dagster's own tick iterator
    (bounded, so that ``* * * * *`` stays cheap): the most a freshness policy may allow before each tick."""
    from dagster._utils.schedules import cron_string_iterator

    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, midnight
    ticks = cron_string_iterator(start, cron, "UTC")
    previous, gap = next(ticks), timedelta(days=366)
    for _ in range(3000):
        tick = next(ticks)
        gap = min(gap, tick - previous)
        previous = tick
        if tick.timestamp() - start > 8 * 86400:
            break
    return gap
