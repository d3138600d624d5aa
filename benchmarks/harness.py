"""Pieces the benchmark and chaos harnesses share: measured child processes, ordersync configurations,
destinations (a throwaway PostgreSQL server included) and row counts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets import KEY, ordersync_source

HERE = Path(__file__).resolve().parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Measured:
    """One child process: wall and CPU seconds, peak RSS (its own ``ru_maxrss``), exit code and output."""

    wall: float
    cpu: float
    rss_mb: float
    code: int
    stdout: str
    stderr: str
    launched: float = 0.0  # ``time.monotonic()`` when it was started (the clock of the fast server's stamps)


def measure(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` under ``launch.py``, which reads its resource usage with ``wait4``: threads included, and the
    peak RSS its own, not inherited from this (much larger) harness process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory(prefix="ordersync-measure-") as tmp:
        usage_file = Path(tmp) / "usage.json"
        code = subprocess.run([sys.executable, "-S", str(HERE / "launch.py"), str(usage_file), *argv], stdout=out,
                              stderr=err, env={**os.environ, **(env or {})}).returncode
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {"wall": 0, "cpu": 0, "rss_mb": 0}
        out.seek(0)
        err.seek(0)
        return Measured(usage["wall"], usage["cpu"], usage["rss_mb"], code, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"), usage.get("launched", 0.0))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, destination: str, sources: dict[str, dict[str, Any]]) -> Path:
    lines = ["[destination]", f"url = {toml_value(destination)}", ""]
    for name, section in sources.items():
        lines.append(f"[sources.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in section.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sync_argv(config: Path, *sources: str) -> list[str]:
    """``ordersync sync`` as a user runs it (the installed command's module, so the venv's Python)."""
    return [sys.executable, "-m", "ordersync", "sync", *sources, "--config", str(config), "-q"]


SYNC_ENV = {"ORDERSYNC_BENCH_KEY": KEY}


def bench_config(work: Path, api: str, root: str, destination: str, **settings: Any) -> Path:
    return write_config(work / f"{api}.toml", destination, {"bench": {**ordersync_source(api, root), **settings}})


def count_orders(url: str) -> int:
    """Rows in ``orders`` at a destination URL (-1 when it cannot be read from here)."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one())
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - a destination this build cannot read is reported, not fatal
        return -1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(orders: int, data: Path, api: str = "frontcore") -> tuple[subprocess.Popen[bytes], str]:
    """``ordersync serve API`` in its own process (data in a SQLite file); returns it and its root URL."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ordersync", "serve", api, "--port", str(port),
                             "--orders", str(orders), "--seed", "1", "--api-key", KEY, "--data", str(data),
                             "--no-rate-limit"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/openapi.json", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the sandbox did not start")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL 15 server in a temporary folder (initdb as the ``postgres`` user), or None without one."""
    if not (PG_BIN / "initdb").exists():
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="ordersync-pg-"))
    base.chmod(0o777)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, port = base / "data", free_port()
    try:
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], check=True,
                       capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        shutil.rmtree(base, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def reset_postgres(url: str) -> None:
    """Drop every table so that each contender starts empty."""
    with contextlib.suppress(Exception):
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


# Destinations ordersync is measured into: name -> URL for a fresh, empty database (None: not available here).
# Adding a destination is one line.
Destination = Callable[[Path, str | None], str | None]
DESTINATIONS: dict[str, Destination] = {
    "sqlite": lambda work, pg: f"sqlite:///{work / 'ordersync.db'}",
    "postgresql": lambda work, pg: pg,
    "duckdb": lambda work, pg: f"duckdb:///{work / 'ordersync.duckdb'}",
}
