"""A real PostgreSQL server for the tests: initdb in a temporary folder, a free port, stopped at the end.

Use the pytest fixtures in ``tests/conftest.py``: ``pg_server`` (one per test session) and ``pg_url`` (a fresh,
empty database per test, as ``postgresql://ordersync:PASSWORD@127.0.0.1:PORT/NAME``). Outside pytest::

    with PgServer.start() as server:
        url = server.new_database()

The machine runs the tests as root, and PostgreSQL refuses to run as root: the server runs as the ``postgres``
user through ``runuser``. The binaries come from Debian's ``postgresql`` package (``make test`` installs it where
it is missing); a missing server is an error, never a skipped test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

USER = "ordersync"
PASSWORD = "pg-test-secret-7f3a"


def bin_dir() -> Path:
    explicit = os.environ.get("ORDERSYNC_PG_BIN")
    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                    key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found (initdb): run 'make test', which installs Debian's "
                       "postgresql package, or apt-get install -y postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PgServer:
    folder: Path
    port: int
    bin: Path
    options: str = ""

    @classmethod
    def start(cls, durable: bool = False, settings: str = "") -> PgServer:
        """Start a server; ``durable`` keeps PostgreSQL's default fsync settings (for benchmarks); ``settings``
        adds server options such as ``"-c shared_buffers=512MB"``."""
        binaries = bin_dir()
        folder = Path(tempfile.mkdtemp(prefix="ordersync-pg-"))
        data = folder / "data"
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        _run(_as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                           "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
                           "--locale=C"]))
        port = free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not durable:  # tests need no crash safety of the server itself: faster
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += f" {settings}" if settings else ""
        server = cls(folder, port, binaries, options)
        server._start()
        return server

    def _start(self) -> None:
        _run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-o", self.options, "-l",
                           str(self.folder / "log"), "-w", "-t", "60", "start"]))

    def crash_and_restart(self) -> None:
        """Stop the server as a crash would (every process at once: no checkpoint, nothing more flushed), then
        start it again: it recovers what its write-ahead log holds."""
        _run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w",
                           "stop"]))
        self._start()

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{password}" if password is not None else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL (with the password)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate",
                                     "-w", "stop"]), capture_output=True, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} failed: {result.stderr[-2000:] or result.stdout[-2000:]}")
