"""Issue 25, points 1-4, and issue 24, point 11, as a user runs the commands (``python -m ordersync``, a real
sandbox over HTTP, a real PostgreSQL): commands that only read create nothing anywhere and need no API key, every
command uses the whole configured destination (its schema), and a password holding ``@ : / #`` works and is never
shown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.pg_server import PASSWORD, PgServer
from tests.support import running

KEY = "ro-cli-key-1234"
ODD_PASSWORD = "p@ss:w/rd#?SecretTail88"


def ordersync(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("FC_KEY", "PG_PASSWORD")}
    return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**base, **(env or {})})


def write_config(tmp_path: Path, url: str, sandbox_url: str = "http://127.0.0.1:9", destination: str = "") -> str:
    path = tmp_path / "ordersync.toml"
    path.write_text(f'[destination]\nurl = "{url}"\n{destination}\n[sources.courses]\ntype = "frontcore"\n'
                    f'api_key = "${{FC_KEY}}"\nbase_url = "{sandbox_url}/v2"\nrequests_per_second = 1000\n'
                    'streams = ["orders"]\n')
    return str(path)


def tables(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
                            "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()


def test_read_only_commands_create_nothing_on_an_empty_postgres(pg_url: str, tmp_path: Path) -> None:
    """Point 2: ``export --db`` on an empty database created nine tables in public and wrote a header."""
    out = tmp_path / "orders.csv"
    for args in (["export", "orders", "--db", pg_url, "--out", str(out)], ["history", "shop", "1", "--db", pg_url],
                 ["status", "--config", write_config(tmp_path, pg_url)], ["dashboard", "--db", pg_url, "--port", "0"],
                 ["report", "--db", pg_url]):
        result = ordersync(*args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr and PASSWORD not in result.stderr
        assert "no ordersync tables" in result.stderr or "cannot read" in result.stderr, result.stderr
    assert tables(pg_url) == [] and not out.exists()


def test_every_command_reads_the_configured_schema_without_api_keys(pg_url: str, tmp_path: Path) -> None:
    """Points 3 and 4: ``dashboard --config`` read ``public`` instead of ``[destination] schema``, and refused to start
    without every source's key although it calls no API."""
    with running("frontcore", orders=30, seed=5, api_key=KEY) as fc:
        config = write_config(tmp_path, pg_url, fc.url, destination='schema = "shop"')
        synced = ordersync("sync", "--config", config, cwd=tmp_path, env={"FC_KEY": KEY})
        assert synced.returncode == 0, synced.stderr
    assert {schema for schema, _ in tables(pg_url)} == {"shop"}
    status = ordersync("status", "--config", config, cwd=tmp_path)  # no FC_KEY: reading needs no key
    assert status.returncode == 0 and "courses" in status.stdout, status.stderr
    exported = ordersync("export", "orders", "--config", config, cwd=tmp_path)
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 31, exported.stderr
    by_flag = ordersync("export", "orders", "--db", pg_url, "--schema", "shop", cwd=tmp_path)
    assert by_flag.stdout == exported.stdout
    dashboard = subprocess.Popen([sys.executable, "-m", "ordersync", "dashboard", "--config", config, "--port", "0"],
                                 cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                                 env={k: v for k, v in os.environ.items() if k != "FC_KEY"})
    try:
        assert dashboard.stderr is not None
        line = dashboard.stderr.readline()
        assert "ordersync dashboard on http://" in line, line
        base = line.split("on ", 1)[1].split("/ ", 1)[0]
        for _ in range(100):
            try:
                page = httpx.get(f"{base}/orders", timeout=10)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert page.status_code == 200 and "courses" in page.text
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    assert {schema for schema, _ in tables(pg_url)} == {"shop"}  # nothing created in public


def test_a_password_with_url_characters_works_and_is_never_shown(pg_server: PgServer, pg_url: str,
                                                                  tmp_path: Path) -> None:
    """Issue 24, point 11: ``${VAR}`` bringing ``@ : / #`` into the URL gave a traceback ending in the password's
    tail, or the tail as the database name in the one-line error."""
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE odd LOGIN PASSWORD '{ODD_PASSWORD}'")
        conn.execute(f"GRANT ALL ON DATABASE {database} TO odd")
        conn.execute("GRANT ALL ON SCHEMA public TO odd")
    url = f"postgresql://odd:${{ODD_PW}}@127.0.0.1:{pg_server.port}/{database}"
    with running("frontcore", orders=20, seed=5, api_key=KEY) as fc:
        config = write_config(tmp_path, url, fc.url)
        synced = ordersync("sync", "--config", config, cwd=tmp_path, env={"FC_KEY": KEY, "ODD_PW": ODD_PASSWORD})
    assert synced.returncode == 0, synced.stderr
    status = ordersync("status", "--config", config, cwd=tmp_path, env={"ODD_PW": ODD_PASSWORD})
    assert status.returncode == 0 and "courses" in status.stdout
    wrong = ordersync("status", "--config", config, cwd=tmp_path, env={"ODD_PW": ODD_PASSWORD[:-1] + "9"})
    assert wrong.returncode == 1 and "wrong password for user 'odd'" in wrong.stderr
    for result in (synced, status, wrong):
        text = result.stdout + result.stderr
        assert "Traceback" not in text and "SecretTail" not in text and "w/rd" not in text, text


def test_read_only_commands_write_nothing_beside_a_sqlite_file(tmp_path: Path) -> None:
    """Point 2 (and 7: ``status`` wrote a lock file, so a full disk was a traceback): after a sync, nothing the
    read-only commands do adds, removes or changes a file in the database's folder."""
    with running("frontcore", orders=20, seed=5, api_key=KEY) as fc:
        config = write_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'orders.db'}", fc.url)
        (tmp_path / "data").mkdir()
        assert ordersync("sync", "--config", config, cwd=tmp_path, env={"FC_KEY": KEY}).returncode == 0
    folder = tmp_path / "data"
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}
    for args in (["status"], ["export", "orders"], ["history", "courses", "1"], ["report", "--since", "2000-01-01"]):
        result = ordersync(*args, "--config", config, cwd=tmp_path)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()} == before
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = ordersync("status", "--config", write_config(empty, f"sqlite:///{empty / 'none.db'}"), cwd=empty)
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["ordersync.toml"]


@pytest.mark.parametrize("url", ["sqlite://m.db", "sqlite://"])
def test_a_sync_into_a_url_that_names_no_file_is_refused(tmp_path: Path, url: str) -> None:
    """Point 1: ``sqlite://m.db`` synced 3,000 orders into a database that vanished, and said "ok"."""
    result = ordersync("sync", "--config", write_config(tmp_path, url), cwd=tmp_path, env={"FC_KEY": KEY})
    assert result.returncode == 4 and "sqlite:///" in result.stderr and "names no file" in result.stderr
