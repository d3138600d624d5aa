"""How long a configuration of many accounts takes to load, as a file and as Dagster definitions.

Writes an ``ordersync.toml`` with N sources (the four APIs in turn, each with a schedule and its secrets from the
environment), then times, each in a fresh process so that no cache helps: reading and validating the file
(``ordersync.api.load_config``), and building the Dagster definitions and resolving their repository (every asset,
job and schedule, what ``dagster dev`` does on start-up).

    .venv/bin/python benchmarks/many_accounts.py --sources 200
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SECTIONS = {
    "frontcore": 'type = "frontcore"\napi_key = "${{KEY_{i}}}"\nschedule = "15m"\n',
    "eguma": 'type = "eguma"\napi_key = "${{KEY_{i}}}"\nschedule = "1h"\n',
    "firespring": 'type = "firespring"\napi_key = "${{KEY_{i}}}"\nwebsite_id = {i}\nschedule = "*/30 * * * *"\n',
    "prio": 'type = "prio"\nclient_id = "${{KEY_{i}}}"\nclient_secret = "${{KEY_{i}}}"\nschedule = "0 */2 * * *"\n',
}

MEASURE = """
import sys, time
started = time.perf_counter()
from ordersync import api
imported = time.perf_counter()
config = api.load_config(sys.argv[1])
loaded = time.perf_counter()
from ordersync.integrations.dagster import definitions
dagster_imported = time.perf_counter()
repo = definitions(config).get_repository_def()
repo.get_all_jobs(); repo.assets_defs_by_key; repo.schedule_defs
built = time.perf_counter()
print(f"{len(config.sources)} sources, {len(repo.assets_defs_by_key)} assets, {len(repo.schedule_defs)} schedules")
print(f"import ordersync.api           {imported - started:7.3f} s")
print(f"load_config (read + validate)  {loaded - imported:7.3f} s")
print(f"import the dagster integration {dagster_imported - loaded:7.3f} s")
print(f"definitions + repository       {built - dagster_imported:7.3f} s")
"""


def write_config(path: Path, count: int) -> dict[str, str]:
    kinds = list(SECTIONS)
    parts = ['[destination]\nurl = "sqlite:///orders.db"\n']
    env = {}
    for i in range(count):
        kind = kinds[i % len(kinds)]
        parts.append(f"\n[sources.account-{i:03d}]\n" + SECTIONS[kind].format(i=i))
        env[f"KEY_{i}"] = f"secret-{i}"
    path.write_text("".join(parts))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ordersync.toml"
        env = write_config(path, args.sources)
        subprocess.run([sys.executable, "-c", MEASURE, str(path)], check=True, env={**os.environ, **env})


if __name__ == "__main__":
    main()
