"""A core install syncs; a command whose extra is missing says which extra to install, in one line.

``pip install ordersync`` leaves out the sandbox and dashboard extras. Rather than build a second environment, each
test runs the real command line in a subprocess whose ``sitecustomize`` (on a temporary PYTHONPATH) puts an import
hook first on ``sys.meta_path``: every library of those extras is unimportable there, as if it were not installed,
and every attempt to import one is written down. The sandboxes themselves run in this test process, over real HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ordersync import apis
from ordersync.sandbox import registry
from tests.support import Running, running

# The libraries the sandbox and dashboard extras bring: listed here by hand, so that this test does not follow a
# change of ordersync.extras that would let one of them back into the core.
EXTRA_LIBRARIES = ("starlette", "uvicorn", "httptools", "uvloop", "faker", "jinja2")
# And those of the destination and orchestrator extras: a sync into SQLite needs none of them either.
OTHER_EXTRAS = ("psycopg", "psycopg_binary", "duckdb", "duckdb_engine", "pyarrow", "dagster")

HOOK = '''\
import os
import sys

BLOCKED = set(os.environ["ORDERSYNC_TEST_BLOCKED"].split(","))
LOG = os.environ["ORDERSYNC_TEST_BLOCKED_LOG"]


class NotInstalled:
    """Finds every module of the blocked libraries and refuses it, as an environment without them would."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in BLOCKED:
            return None
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(name + "\\n")
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NotInstalled())
'''


def without_extras(tmp_path: Path, *args: str, blocked: tuple[str, ...] = EXTRA_LIBRARIES,
                   ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``ordersync *args`` with the ``blocked`` libraries unimportable; its result and the imports it attempted."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    log = tmp_path / "attempted.txt"
    log.write_text("", encoding="utf-8")
    env = {**os.environ, "ORDERSYNC_TEST_BLOCKED": ",".join(blocked), "ORDERSYNC_TEST_BLOCKED_LOG": str(log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=env)
    return result, log.read_text(encoding="utf-8").split()


def source_section(name: str, server: Running) -> str:
    """The ``[sources.NAME]`` section that syncs ``server`` (its own test credentials, as ``serve`` prints them)."""
    settings = {**server.settings(), "type": name}
    return f"[sources.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())


def test_the_hook_blocks_what_it_should(tmp_path: Path) -> None:
    """The check of the check: in the hooked interpreter a blocked library cannot be imported, and the attempt is
    written down."""
    result, attempted = without_extras(tmp_path, "--help")
    assert result.returncode == 0 and attempted == []
    probe = subprocess.run([sys.executable, "-c", "import starlette.requests"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "ORDERSYNC_TEST_BLOCKED": "starlette",
                                            "ORDERSYNC_TEST_BLOCKED_LOG": str(tmp_path / "probe.log"),
                                            "PYTHONPATH": str(tmp_path / "hook")})
    assert "No module named 'starlette'" in probe.stderr
    assert (tmp_path / "probe.log").read_text(encoding="utf-8").split() == ["starlette"]


def test_a_sync_without_the_extras_succeeds_and_never_imports_them(tmp_path: Path) -> None:
    """Every API's sandbox, served by this process, synced by one ``ordersync sync`` that has no extra."""
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(running(name, orders=30, seed=5)) for name in registry()}
        config = tmp_path / "ordersync.toml"
        config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n'
                          + "\n".join(source_section(name, server) for name, server in servers.items()),
                          encoding="utf-8")
        result, attempted = without_extras(tmp_path, "sync", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert attempted == []
    with contextlib.closing(sqlite3.connect(tmp_path / "orders.db")) as db:
        synced = dict(db.execute("select source, count(*) from orders group by source").fetchall())
    assert set(synced) == set(apis.registry()) and all(count > 0 for count in synced.values())


def test_a_sync_into_sqlite_needs_no_extra_at_all(tmp_path: Path) -> None:
    with running("frontcore", orders=20, seed=5) as server:
        config = tmp_path / "ordersync.toml"
        config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n'
                          + source_section("frontcore", server), encoding="utf-8")
        result, attempted = without_extras(tmp_path, "sync", "--config", str(config),
                                           blocked=EXTRA_LIBRARIES + OTHER_EXTRAS)
    assert result.returncode == 0, result.stderr
    assert attempted == []


@pytest.mark.parametrize(("args", "extra"), [
    (("serve", "frontcore"), "sandbox"),
    (("demo", "--orders", "5"), "sandbox"),
    (("dashboard", "--db", "orders.db"), "dashboard"),
])
def test_a_command_whose_extra_is_missing_says_which_to_install(tmp_path: Path, args: tuple[str, ...],
                                                                extra: str) -> None:
    result, attempted = without_extras(tmp_path, *args)
    assert result.returncode == 1  # as for a missing destination extra: a failure to fix by installing it
    assert attempted, "the command never tried its extra's libraries"
    [line] = result.stderr.strip().splitlines()
    assert f"pip install 'ordersync[{extra}]'" in line and f"ordersync {args[0]}" in line
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "orders.db").exists()
