"""Every wait on PostgreSQL has an end: a frozen server (its processes stopped, a network partition) fails a sync
with one line instead of holding it, and the source's lock, for ever.

Three settings of ``[destination]``, each a number of seconds:

- ``connect_timeout_seconds``: libpq's ``connect_timeout``, for every connection (a server that accepts the TCP
  connection but never answers, as a stopped postmaster does, included).
- ``statement_timeout_seconds``: the server's ``statement_timeout`` (it cancels a longer statement), and, on this
  side, how long any one exchange with the server (a statement, a COPY's data, a commit) may wait for its
  answer, plus :data:`GRACE`: a stopped server cancels nothing, so the client stops waiting itself and drops the
  connection (see :class:`ordersync.store.pg_connection.BoundedConnection`).
- ``lock_timeout_seconds``: the server's ``lock_timeout``: a statement waits at most this long for a lock held by
  another session (a migration of the schema, a table lock taken by hand).

The sync process waits for its writer process's answers at most :meth:`PgBounds.answer_wait` (see
:mod:`ordersync.store.writer`). Schema upgrades are exempt from the two server timeouts (one of them rewrites large
tables once); they keep the client-side bound on each exchange with the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ordersync.errors import ConfigError

GRACE = 10.0
"""Seconds the client waits beyond ``statement_timeout`` for an answer: the server's own cancel and the network.
The environment variable ``ORDERSYNC_PG_GRACE_SECONDS`` sets another, for a process and the writer it starts: a
test of a frozen server waits 1 s, not 10, twice."""


def grace_seconds() -> float:
    """:data:`GRACE`, or ``ORDERSYNC_PG_GRACE_SECONDS`` when it is set."""
    given = os.environ.get("ORDERSYNC_PG_GRACE_SECONDS", "")
    if not given:
        return GRACE
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigError("ORDERSYNC_PG_GRACE_SECONDS must be a number of seconds (0 to 3600)")
    return seconds

DEFAULTS = {"connect_timeout_seconds": 10.0, "statement_timeout_seconds": 300.0, "lock_timeout_seconds": 60.0}
"""The settings and their defaults: 300 s for a statement is far beyond any page's (a second or less) and a
``status`` over millions of orders, and still ends a sync that a frozen server holds within about 11 minutes."""

_LIMITS = {"connect_timeout_seconds": (1, 3600), "statement_timeout_seconds": (1, 86400),
           "lock_timeout_seconds": (1, 86400)}


@dataclass(frozen=True)
class PgBounds:
    """The bounds of one PostgreSQL destination, in seconds."""

    connect: float = DEFAULTS["connect_timeout_seconds"]
    statement: float = DEFAULTS["statement_timeout_seconds"]
    lock: float = DEFAULTS["lock_timeout_seconds"]
    grace: float = field(default_factory=grace_seconds)

    def server_options(self) -> str:
        """The libpq ``options`` that set the server's two timeouts for a session."""
        return f" -c statement_timeout={int(self.statement * 1000)} -c lock_timeout={int(self.lock * 1000)}"

    @property
    def exchange_wait(self) -> float:
        """How long the client waits for the server's answer to one exchange before it drops the connection."""
        return self.statement + self.grace

    def answer_wait(self) -> float:
        """How long the sync process waits for its writer process's next answer while pages are pending: a page is
        a few exchanges, each bounded by :attr:`exchange_wait` in the writer, whose own error normally comes first;
        this catches a writer that is stuck anywhere else."""
        return 3 * self.exchange_wait + self.connect

    def frozen(self, where: str) -> str:
        """The one line of a server that stopped answering."""
        return (f"PostgreSQL at {where} did not answer for {self.exchange_wait:g}s (statement_timeout_seconds "
                f"{self.statement:g} + {self.grace:g}): the server is frozen or unreachable (a stopped server, a "
                "network partition, a full disk on its host): check that it runs and can be reached from here, then "
                "run the sync again; nothing after the last committed page was stored")


def parse(destination: dict[str, Any], url: str, where: str) -> dict[str, float]:
    """The bounds set in ``[destination]``, as ``Store`` keyword arguments (PostgreSQL urls only)."""
    given = {name: destination[name] for name in DEFAULTS if name in destination}
    if given and not url.startswith(("postgresql", "postgres:")):
        raise ConfigError(f"{where}: [destination] {', '.join(given)} applies to PostgreSQL urls only; remove it")
    for name, value in given.items():
        low, high = _LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"{where}: [destination] {name} must be a number of seconds ({low} to {high})")
    return {name.removesuffix("_seconds"): float(value) for name, value in given.items()}
