"""ordersync in Dagster (``pip install 'ordersync[dagster]'``): one call turns a configuration into Definitions.

    # definitions.py
    from pathlib import Path

    from ordersync.integrations.dagster import definitions

    defs = definitions(Path(__file__).with_name("ordersync.toml"))

Each source becomes one multi-asset (one asset per stream, keys ``ordersync/<source>/<stream>``) materialized by
one sync of that source through :func:`ordersync.api.sync`, in the concurrency pool named after the source (set
its limit to 1 in the instance, see the README); when the source has a ``schedule`` setting, a schedule
``ordersync_<source>`` starts runs of its assets. Each materialization records the counts of its stream as
metadata; a failed stream fails the run with ordersync's one-line message.
"""

import re
from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext

from ordersync import api, schedule
from ordersync.apis.base import SourceSettings
from ordersync.errors import ConfigError, SyncError

__all__ = ["JOB", "definitions", "metadata", "op_name", "pool_name", "schedule_name", "source_assets"]

JOB = "ordersync"
"""The one job of every ordersync asset; a run of it syncs the sources whose assets it selects."""


def definitions(config: api.ConfigLike = None, *, key_prefix: str = "ordersync", group_name: str = "ordersync",
                schedules_running: bool = True) -> dg.Definitions:
    """Dagster definitions of every source of a configuration (a path, a dict, a Config, or None for the default
    file): one multi-asset per source, the job ``ordersync`` over all of them, and a schedule per source that has a
    ``schedule`` setting (started at once unless ``schedules_running`` is False; cron times are UTC), each tick
    one run of that source's assets."""
    cfg = api.load_config(config)
    _check_names(list(cfg.sources))
    status = dg.DefaultScheduleStatus.RUNNING if schedules_running else dg.DefaultScheduleStatus.STOPPED
    assets = {source: source_assets(cfg, source, key_prefix=key_prefix, group_name=group_name)
              for source in cfg.sources}
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(*assets.values()),
                              description="ordersync syncs; each run syncs the sources whose assets it selects")
    schedules = [_schedule(source, settings.schedule, list(assets[source].keys), status)
                 for source, settings in cfg.sources.items() if settings.schedule]
    return dg.Definitions(assets=list(assets.values()), jobs=[job], schedules=schedules)


def _schedule(source: str, when: str, keys: list[dg.AssetKey],
              status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    """A schedule that starts one run of the ``ordersync`` job selecting the assets of one source. (One job for
    all sources, not one each: Dagster resolves every job against every asset, which 200 jobs make slow.)"""

    @dg.schedule(name=schedule_name(source), job_name=JOB, cron_schedule=schedule.cron(when),
                 execution_timezone="UTC", default_status=status, description=f"ordersync sync of {source}: {when}")
    def _run(_context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(asset_selection=keys, tags={"ordersync/source": _tag(source)})

    return _run


def source_assets(config: api.Config, source: str, *, key_prefix: str = "ordersync",
                  group_name: str = "ordersync") -> dg.AssetsDefinition:
    """The multi-asset of one source: one asset per stream, all materialized by one sync of the source."""
    settings = config.sources[source]
    streams = _streams(settings)
    specs = [dg.AssetSpec([key_prefix, source, stream], group_name=group_name, kinds={"ordersync", settings.type},
                          description=f"{stream} of the {settings.type} source '{source}'",
                          tags={"ordersync/source": _tag(source)})
             for stream in streams]

    @dg.multi_asset(name=op_name(source), specs=specs, pool=pool_name(source), can_subset=False,
                    description=f"sync of the {settings.type} source '{source}'")
    def _sync(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        result = api.sync(config, [source])
        for stream in result.streams:
            if stream.ok:
                yield dg.MaterializeResult(asset_key=[key_prefix, source, stream.stream], metadata=metadata(stream))
        try:
            result.raise_for_errors()
        except SyncError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(f"ordersync {source}: {result.rows.new:,} new, {result.rows.changed:,} changed rows, "
                         f"{result.requests:,} requests in {result.seconds:.1f}s")

    return _sync


def metadata(stream: api.StreamResult) -> dict[str, dg.MetadataValue]:
    """What the Dagster UI shows for one materialization: the counts of the stream's own rows, its customers (for
    an orders stream), the requests sent and the seconds it took."""
    main = stream.orders if stream.stream == "orders" else stream.customers
    values: dict[str, dg.MetadataValue] = {
        "new": dg.MetadataValue.int(main.new),
        "changed": dg.MetadataValue.int(main.changed),
        "unchanged": dg.MetadataValue.int(main.unchanged),
        "records": dg.MetadataValue.int(stream.records),
        "requests": dg.MetadataValue.int(stream.requests),
        "seconds": dg.MetadataValue.float(round(stream.seconds, 3)),
    }
    if stream.stream == "orders":
        values["customers new"] = dg.MetadataValue.int(stream.customers.new)
        values["customers changed"] = dg.MetadataValue.int(stream.customers.changed)
    return values


def schedule_name(source: str) -> str:
    """The schedule of a source: Dagster names take letters, digits and underscores only."""
    return "ordersync_" + re.sub(r"\W", "_", source)


def op_name(source: str) -> str:
    """The op that syncs a source."""
    return "sync_" + re.sub(r"\W", "_", source)


def pool_name(source: str) -> str:
    """The concurrency pool of a source's assets: the source's name (pool names cannot hold white space)."""
    return re.sub(r"\s", "_", source)


def _tag(source: str) -> str:
    return re.sub(r"[^\w.-]", "_", source)[:63]


def _streams(settings: SourceSettings) -> list[str]:
    return settings.stream_names()


def _check_names(sources: list[str]) -> None:
    seen: dict[str, str] = {}
    for source in sources:
        other = seen.setdefault(op_name(source), source)
        if other != source:
            raise ConfigError(f"the sources '{other}' and '{source}' get the same Dagster name {op_name(source)}; "
                              "rename one of them (letters, digits and underscores are kept)")
