"""Runs a sandbox app with uvicorn: in a background thread (demo, tests) or in the foreground (``serve``)."""

from __future__ import annotations

import errno
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


@dataclass
class RunningServer:
    base_url: str
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


def start_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (port 0 picks a free one) and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, host, bound_port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"sandbox:{bound_port}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox on {host}:{bound_port} did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{bound_port}", host, bound_port, server, thread)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (0: a free port), or :class:`ListenError` saying what to pick instead.
    Bound before anything is announced, so a port in use, out of range or an address this machine lacks is one
    line (and its own exit status), never an announced URL that nothing answers."""
    from ordersync.errors import ListenError

    if not 0 <= port <= 65535:
        raise ListenError(f"--port {port} is not a port: use 1 to 65535, e.g. --port {free_port(host) or 8050}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ListenError(f"--host {host!r} is not an address of this machine ({exc}): use 127.0.0.1") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            free = free_port(host)
            raise ListenError(f"port {port} on {host} is in use (another dashboard or sandbox?): pick another, "
                              f"e.g. --port {free}" if free else f"port {port} on {host} is in use") from None
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    return sock


def free_port(host: str = "127.0.0.1") -> int | None:
    """A port free on ``host`` right now (the system's pick), to suggest; None if none can be had."""
    try:
        with socket.create_server((host, 0)) as probe:
            return int(probe.getsockname()[1])
    except OSError:
        return None


def serve_forever(app: ASGIApp, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Serve until Ctrl+C, on ``sock`` when given (see :func:`listen`)."""
    server = uvicorn.Server(_config(app, host, port))
    server.run(sockets=[sock] if sock is not None else None)
