"""``definitions(config)``: the one-call path, from a configuration to assets, a job, schedules, checks and the
resource."""


from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ordersync import api, schedule
from ordersync.errors import ConfigError
from ordersync.integrations.dagster import _plan
from ordersync.integrations.dagster.assets import ordersync_assets
from ordersync.integrations.dagster.resource import OrdersyncResource, OrdersyncRunConfig
from ordersync.integrations.dagster.translator import OrdersyncTranslator

JOB = "ordersync"
"""The one job of every ordersync asset; a run of it syncs the sources whose assets it selects."""


def definitions(config: api.ConfigLike = None, *, translator: OrdersyncTranslator | None = None,
                key_prefix: str = "ordersync", group_name: str = "ordersync", schedules_running: bool = False,
                retry_policy: dg.RetryPolicy | None = None, resource: OrdersyncResource | None = None,
                sources: list[str] | None = None) -> dg.Definitions:
    """Dagster definitions of the sources of a configuration (a path, a dict, or None for the default file; all
    sources unless ``sources`` names some): a multi-asset per source, the job ``ordersync``, a schedule per
    source with a ``schedule`` setting (stopped until turned on, unless ``schedules_running``; cron times are
    UTC; the translator gives its tables a freshness policy from it), and the resource ``ordersync`` (by
    default: this configuration, read again in the run). Loading needs no secret."""
    cfg = _plan.plan(config)
    chosen = api.select(cfg, sources)
    _plan.check_names(chosen)
    translator = translator or OrdersyncTranslator(key_prefix=key_prefix, group_name=group_name)
    assets = {source: _source_assets(cfg, source, translator, retry_policy) for source in chosen}
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(*assets.values()),
                              description="ordersync syncs; each run syncs the sources whose assets it selects")
    status = dg.DefaultScheduleStatus.RUNNING if schedules_running else dg.DefaultScheduleStatus.STOPPED
    timed = {source: settings.schedule for source, settings in chosen.items() if settings.schedule}
    schedules = [_schedule(source, when, list(assets[source].keys), status) for source, when in timed.items()]
    return dg.Definitions(assets=list(assets.values()), jobs=[job], schedules=schedules,
                          resources={"ordersync": resource or OrdersyncResource(**_where(config))})


def _source_assets(cfg: api.Config, source: str, translator: OrdersyncTranslator,
                   retry_policy: dg.RetryPolicy | None) -> dg.AssetsDefinition:
    @ordersync_assets(config=cfg, source=source, translator=translator, retry_policy=retry_policy)
    def _sync(context: dg.AssetExecutionContext, ordersync: OrdersyncResource,
              config: OrdersyncRunConfig) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield from ordersync.sync(context, config)

    return _sync


def _where(config: api.ConfigLike) -> dict[str, Any]:
    """The resource's fields for a configuration: a file by its absolute path (the run worker may start
    elsewhere), a dict as it is (its ``${VAR}`` still to read)."""
    if isinstance(config, Mapping):
        return {"config": dict(config)}
    if isinstance(config, api.Config):
        if config.path is None:
            raise ConfigError("definitions() needs the configuration's path or dict, which the run reads again; "
                              "this one was read from a dict: pass the dict")
        config = config.path
    from ordersync import config as config_module

    return {"config_path": str(Path(config_module.config_path(str(config) if config else None)).absolute())}


def _schedule(source: str, when: str, keys: list[dg.AssetKey],
              status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    """A schedule that starts one run of the ``ordersync`` job selecting the assets of one source. (One job for
    all sources, not one each: Dagster resolves every job against every asset, which 200 jobs make slow.)"""

    @dg.schedule(name=_plan.schedule_name(source), job_name=JOB, cron_schedule=schedule.cron(when),
                 execution_timezone="UTC", default_status=status, description=f"ordersync sync of {source}: {when}")
    def _run(_context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(asset_selection=keys, tags={"ordersync/source": _plan.tag_value(source)})

    return _run
