"""The psycopg connection every PostgreSQL store uses: each wait for the server has an end (see
:mod:`ordersync.store.bounds` for the settings). Apart from :mod:`~ordersync.store.bounds` so that reading the
configuration never imports psycopg, which only the ``postgres`` extra installs."""

from __future__ import annotations

from typing import Any

import psycopg


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``exchange_wait`` seconds: the connection
    is then dropped (its transaction rolls back on the server when it wakes) and the statement fails with
    :class:`ServerFrozen`. psycopg waits through :meth:`wait` for every statement, COPY block, commit and
    rollback; connecting is bounded by libpq's ``connect_timeout``."""

    exchange_wait: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = timeout if timeout is not None else self.exchange_wait
        try:
            return super().wait(gen, interval, limit)
        except psycopg.errors._WaitTimeout:
            if timeout is not None:
                raise  # psycopg's own bounded wait (a cancel): it handles it
            self.pgconn.finish()  # the socket closed: nothing more waits on this connection
            self._closed = True
            raise ServerFrozen(f"no answer from the server in {limit:g}s") from None


class ServerFrozen(psycopg.OperationalError):
    """The server did not answer one exchange in time (see :class:`BoundedConnection`)."""
