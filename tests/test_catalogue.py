"""Issue 25, point 8: no input ends in a traceback. Every command runs with a catalogue of bad inputs (the issue's
cases, then a hypothesis fuzz of the configuration file, the flags and the dashboard's query parameters) and each
must end with one line, an exit status from the documented set, and the name of the setting or flag to fix.

In-process (typer's runner) so that hundreds of runs take seconds; ``test_the_real_entry_point`` runs a few of
them as a user does, through ``python -m ordersync``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
from typer.testing import CliRunner

from ordersync import apis
from ordersync.cli import app
from ordersync.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERNAL, EXIT_LISTEN, EXIT_STATUSES, EXIT_USAGE

FUZZ = hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                           suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])


def toml_value(value: Any) -> str:
    """A value as TOML (the standard library reads TOML but does not write it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ("nan" if math.isnan(value) else "inf" if value > 0 else "-inf") if not math.isfinite(value) \
            else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def section(name: str, values: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in values.items())


FRONTCORE = {"type": "frontcore", "api_key": "${FC_KEY}", "base_url": "http://127.0.0.1:9/v2"}


def config(tmp: Path, url: str | None = None, **sources: dict[str, Any]) -> str:
    url = url or f"sqlite:///{tmp / 'orders.db'}"
    text = section("destination", {"url": url})
    for name, values in (sources or {"courses": FRONTCORE}).items():
        text += section(f"sources.{name}", values)
    path = tmp / "ordersync.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.setenv("FC_KEY", "catalogue-key-1")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, status: int | None = None, names: tuple[str, ...] = ()) -> str:
        result = runner.invoke(app, list(args))
        text = result.output
        assert "Traceback" not in text, text
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in EXIT_STATUSES, (result.exit_code, text)
        if status is not None:
            assert result.exit_code == status, (args, result.exit_code, text)
        if result.exit_code not in (0, 3):
            assert sum(line.startswith("error:") for line in text.splitlines()) == 1, text  # one error
        for name in names:
            assert name in text, (name, text)
        return text

    yield invoke


def ordersync_db(path: Path) -> str:
    """An ordersync SQLite file with one order (as a sync leaves it)."""
    from ordersync.store import open_store

    store = open_store(f"sqlite:///{path}")
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO orders (source, order_id, api, status, created_at, raw, synced_at) "
                     "VALUES ('shop', '[bold]1', 'frontcore', '[/]', '2024-05-01T10:00:00Z', '{}', "
                     "'2024-05-02T00:00:00Z')")
        conn.execute("INSERT INTO order_versions (source, order_id, version_no, valid_from, status) "
                     "VALUES ('shop', '[bold]1', 1, '2024-05-02T00:00:00Z', '[/]')")
    return str(path)


# --- the cases, one by one ---------------------------------------------------------------------------
BAD_SETTINGS = [
    ({"api_key": "nøkkel"}, "api_key"),
    ({"api_key": ""}, "api_key"),
    ({"requests_per_second": math.inf}, "requests_per_second"),
    ({"requests_per_second": math.nan}, "requests_per_second"),
    ({"lookback_seconds": 10 ** 18}, "lookback_seconds"),
    ({"base_url": "http://127.0.0.1:99999/v2"}, "base_url"),
    ({"base_url": "http://[::1/v2"}, "base_url"),
    ({"base_url": "ftp://example.com/v2"}, "base_url"),
    ({"streams": []}, "streams"),
    ({"timeout": 10 ** 30}, "timeout"),
    ({"created_at_min": "0001-01-01"}, "created_at_min"),
]


@pytest.mark.parametrize(("change", "name"), BAD_SETTINGS)
def test_a_refused_setting_is_named_when_the_file_is_read(run: Any, tmp_path: Path, change: dict[str, Any],
                                                          name: str) -> None:
    path = config(tmp_path, courses={**FRONTCORE, **change})
    for command in ("sync", "status"):
        run(command, "--config", path, status=EXIT_CONFIG, names=(f"[sources.courses] {name}",))


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31T23:59:59-01:00"])
def test_prio_dates_outside_the_calendar_are_refused(run: Any, tmp_path: Path, start: str) -> None:
    prio = {"type": "prio", "client_id": "id-123", "client_secret": "secret-123", "order_created_from": start}
    run("sync", "--config", config(tmp_path, tickets=prio), status=EXIT_CONFIG, names=("order_created_from",))


@pytest.mark.parametrize(("url", "names"), [
    ("sqlite://m.db", ("sqlite:///m.db",)),
    ("sqlite://", ("sqlite:///",)),
    ("sqlite:///:memory:", ("names no file",)),
    ("duckdb://x.duckdb", ("duckdb:///x.duckdb",)),
    ("postgresql://u@h:notaport/db", ("port",)),
    ("postgresql://u@[::1/db", ("IPv6",)),
    ("postgresql://", ("names no server",)),
    ("postgresql://u@h:99999/db", ("99999",)),
    ("mysql://u@h/db", ("sqlite:///PATH",)),
])
def test_a_destination_that_names_no_file_or_server_is_refused(run: Any, tmp_path: Path, url: str,
                                                               names: tuple[str, ...]) -> None:
    for command in ("sync", "status", "dashboard"):
        run(command, "--config", config(tmp_path, url=url), status=EXIT_CONFIG, names=("[destination] url", *names))
    for command in (["export", "orders", "--db", url], ["history", "s", "1", "--db", url], ["dashboard", "--db", url]):
        run(*command, status=EXIT_USAGE, names=("--db",))
    assert not list(tmp_path.glob("*.db*")) and not (tmp_path / "m.db").exists()


def test_flags_out_of_range_are_named(run: Any, tmp_path: Path) -> None:
    path = config(tmp_path)
    run("sync", "--config", path, "--every", "99999999999d", status=EXIT_USAGE, names=("--every",))
    run("sync", "--config", path, "--every", "soon", status=EXIT_USAGE, names=("--every",))
    run("dashboard", "--db", ordersync_db(tmp_path / "o.db"), "--port", "99999", status=EXIT_LISTEN,
        names=("--port",))
    run("serve", "frontcore", "--port", "99999", status=EXIT_LISTEN, names=("--port",))
    run("serve", "frontcore", "--port", "-1", status=EXIT_LISTEN, names=("--port",))
    run("history", "shop", "1", "--db", str(tmp_path / "o.db"), "--format", "xml", status=EXIT_USAGE,
        names=("--format",))
    run("export", "orders", "--db", str(tmp_path / "o.db"), "--schema", "shop", status=EXIT_USAGE,
        names=("--schema",))


def test_files_that_cannot_be_written_are_one_line(run: Any, tmp_path: Path) -> None:
    db = ordersync_db(tmp_path / "o.db")
    (tmp_path / "folder").mkdir()
    run("export", "orders", "--db", db, "--out", str(tmp_path / "folder"), status=EXIT_FAILED, names=("folder",))
    run("demo", "--db", str(tmp_path / "missing" / "demo.db"), status=EXIT_FAILED, names=("missing",))
    assert not (tmp_path / "missing").exists()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, what TEXT)")
    run("demo", "--db", str(foreign), "--orders", "5", status=EXIT_FAILED, names=("not written by ordersync",))
    (tmp_path / "text.db").write_text("not a database")
    run("status", "--config", config(tmp_path, url=f"sqlite:///{tmp_path / 'text.db'}"), status=EXIT_FAILED,
        names=("text.db",))


def test_vendor_text_is_printed_as_text_not_rich_markup(run: Any, tmp_path: Path) -> None:
    out = run("history", "shop", "[bold]1", "--db", ordersync_db(tmp_path / "o.db"), status=0)
    assert "[bold]1" in out and "[/]" in out


def test_a_missing_extra_is_named(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [m for m in sys.modules if m == "psycopg" or m.startswith(("psycopg.", "sqlalchemy.dialects.post"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the postgres extra were not installed
    path = config(tmp_path, url="postgresql://u@127.0.0.1:9/db")
    run("status", "--config", path, status=EXIT_FAILED, names=("postgres extra", "ordersync[postgres]"))


def test_a_bug_is_one_line_called_a_bug(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ordersync import status

    def broken(*_args: Any) -> dict[str, Any]:
        raise KeyError("surprise")

    monkeypatch.setattr(status, "view", broken)
    db = tmp_path / "o.db"
    ordersync_db(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO _ordersync_state (source, stream, api, state, updated_at) VALUES "
                     "('shop', 'orders', 'frontcore', '{\"version\": 1}', '2024-05-02T00:00:00Z')")
    run("status", "--config", config(tmp_path, url=f"sqlite:///{db}"), status=EXIT_INTERNAL,
        names=("internal error", "KeyError", "-v"))


# --- fuzz: the configuration file, the flags, the dashboard's query parameters --------------------------------
VALUES = st.one_of(
    st.integers(min_value=-(10 ** 20), max_value=10 ** 20), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.sampled_from(["0001-01-01", "9999-12-31T23:59:59+14:00", "", " k ",
                                                         "http://[::1", "http://h:0/v2", "${UNSET_VAR}", "ké"]),
    st.lists(st.text(max_size=5), max_size=3),
)


@st.composite
def sources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(apis.registry())))
    fields = sorted(apis.get(kind).settings.model_fields)
    base = {"type": kind, "api_key": "key-1234", "client_id": "id-1234", "client_secret": "secret-1234",
            "website_id": 4}
    base = {k: v for k, v in base.items() if k in fields}
    changed = draw(st.dictionaries(st.sampled_from([*fields, "no_such_setting"]), VALUES, min_size=1, max_size=3))
    return {**base, **changed}


@FUZZ
@hypothesis.given(source=sources())
def test_fuzz_the_configuration_file(run: Any, tmp_path: Path, source: dict[str, Any]) -> None:
    path = config(tmp_path, url=f"sqlite:///{tmp_path / 'absent' / 'orders.db'}", fuzzed=source)
    for command in ("status", "sync"):
        out = run(command, "--config", path)
        if "[sources." in out or "[destination]" in out:
            continue
        assert "not valid TOML" in out or "absent" in out, out  # else the file was fine: the folder is named


@FUZZ
@hypothesis.given(every=st.text(max_size=12), table=st.text(max_size=8), fmt=st.text(max_size=8),
                  port=st.integers(min_value=-(10 ** 6), max_value=10 ** 6).filter(lambda p: not 0 <= p <= 65535))
def test_fuzz_the_flags(run: Any, tmp_path: Path, every: str, table: str, fmt: str, port: int) -> None:
    path = config(tmp_path, url=f"sqlite:///{tmp_path / 'absent' / 'orders.db'}")
    run("sync", "--config", path, "--every", every)
    run("export", table, "--format", fmt, "--config", path)
    run("dashboard", "--config", path, "--port", str(port))
    run("serve", "frontcore", "--port", str(port), status=EXIT_LISTEN, names=("--port",))


def test_the_documented_exit_statuses_are_the_ones_used() -> None:
    """docs/operations.md's table lists exactly ``EXIT_STATUSES``."""
    import re

    doc = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    table = doc.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    assert sorted(int(n) for n in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)) == sorted(EXIT_STATUSES)


def test_the_real_entry_point(tmp_path: Path) -> None:
    """A few of the catalogue through ``python -m ordersync``, as a user runs it."""
    env = {**os.environ, "FC_KEY": "catalogue-key-1"}

    def ordersync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env)

    two_slashes = ordersync("sync", "--config", config(tmp_path, url="sqlite://m.db"))
    assert two_slashes.returncode == EXIT_CONFIG and "sqlite:///m.db" in two_slashes.stderr
    inf = ordersync("status", "--config", config(tmp_path, courses={**FRONTCORE, "requests_per_second": math.inf}))
    assert inf.returncode == EXIT_CONFIG and "requests_per_second" in inf.stderr
    port = ordersync("dashboard", "--db", ordersync_db(tmp_path / "o.db"), "--port", "99999")
    assert port.returncode == EXIT_LISTEN and "--port" in port.stderr
    for result in (two_slashes, inf, port):
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
