"""Issue 25, points 9-12: messages that say what to do, as a user meets them (``python -m ordersync``, real
sockets): a closed port or a wrong base URL names the setting, a port in use has its own exit status and a free
port to pick, rejected records are said (status 3) on every run until resolved, and ``serve`` prints what to paste.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from ordersync.errors import EXIT_LISTEN, EXIT_REJECTED
from ordersync.sandbox.runner import start_in_thread
from tests.support import in_process, running
from tests.test_rejects import Tampered, spoiler

KEY = "first-hour-key-1"


def ordersync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersync", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "FC_KEY": KEY})


def config(tmp_path: Path, base_url: str) -> str:
    path = tmp_path / "ordersync.toml"
    path.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "o.db"}"\n\n[sources.courses]\ntype = "frontcore"\n'
                    f'api_key = "${{FC_KEY}}"\nbase_url = "{base_url}"\nstreams = ["orders"]\n'
                    'requests_per_second = 1000\n', encoding="utf-8")
    return str(path)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nothing listens there


def test_a_closed_port_names_host_port_and_setting_after_few_attempts(tmp_path: Path) -> None:
    port = closed_port()
    result = ordersync("sync", "--config", config(tmp_path, f"http://127.0.0.1:{port}/v2"), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"nothing listens at 127.0.0.1:{port}" in result.stderr, result.stderr
    assert "check base_url in [sources.courses]" in result.stderr and "3 attempts" in result.stderr


def test_a_404_on_the_first_request_suggests_the_base_url(tmp_path: Path) -> None:
    with running("frontcore", orders=10, api_key=KEY) as fc:
        result = ordersync("sync", "--config", config(tmp_path, fc.url), cwd=tmp_path)  # without /v2
    assert result.returncode == 1 and "HTTP 404" in result.stderr
    assert "wrong base URL: check base_url in [sources.courses]" in result.stderr, result.stderr


def test_a_port_in_use_has_its_own_status_and_a_port_to_pick(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    from ordersync.store import open_store

    open_store(f"sqlite:///{db}").close()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        for args in (["dashboard", "--db", str(db)], ["serve", "frontcore", "--orders", "5"]):
            result = ordersync(*args, "--port", str(port), cwd=tmp_path)
            assert result.returncode == EXIT_LISTEN, (args, result.returncode, result.stderr)
            assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "e.g. --port " in result.stderr
            assert "Traceback" not in result.stderr


def test_rejected_records_are_said_on_every_run_until_resolved(tmp_path: Path) -> None:
    """A run after the one that rejected records said "Nothing new since the last run" and exited 0."""
    with in_process("frontcore", orders=40, seed=4, api_key=KEY) as fc:
        server = start_in_thread(Tampered(fc.app, spoiler(fc)[0]))
        try:
            path = config(tmp_path, f"{server.base_url}/v2")
            first = ordersync("sync", "--config", path, "-q", cwd=tmp_path)
            second = ordersync("sync", "--config", path, "-q", cwd=tmp_path)
            with sqlite3.connect(tmp_path / "o.db") as conn:  # resolved by hand, as docs/operations.md says
                conn.execute("DELETE FROM _ordersync_rejects")
            third = ordersync("sync", "--config", path, "-q", cwd=tmp_path)
        finally:
            server.stop()
    assert first.returncode == EXIT_REJECTED and "7 record(s) could not be stored" in first.stderr
    assert second.returncode == EXIT_REJECTED, second.stderr
    assert "7 rejected record(s) are still not stored" in second.stderr and "ordersync status" in second.stderr
    assert third.returncode == 0 and "rejected" not in third.stderr


def test_serve_prints_the_base_url_and_a_section_to_paste(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ordersync", "serve", "frontcore", "--port", "0", "--orders", "5",
                             "--api-key", "paste-me"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while len(lines) < 20 and not (lines and lines[-1].startswith("api_key")):
            lines.append(proc.stderr.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = "".join(lines)
    port = text.split("http://127.0.0.1:", 1)[1].split("/", 1)[0].split()[0]
    assert f"base_url to paste into a source: http://127.0.0.1:{port}/v2" in text, text
    assert f'[sources.frontcore]\ntype = "frontcore"\nbase_url = "http://127.0.0.1:{port}/v2"\napi_key = "paste-me"' \
        in text, text
