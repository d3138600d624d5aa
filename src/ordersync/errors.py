"""One exception tree. Every error carries the sentence a user should read, already free of secrets."""

from __future__ import annotations


class OrdersyncError(Exception):
    """Base of every error ordersync raises on purpose; ``str(err)`` is the line shown to the user."""


class ConfigError(OrdersyncError):
    """The configuration file or a setting is wrong: fix the file, then run again."""


class ApiError(OrdersyncError):
    """The API answered, but not with what we asked for."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """The API refused the credentials."""


class TooLargeError(ApiError):
    """The answer was larger than ``max_body_mb``: it was refused, not read whole (e-guma splits the window)."""

    def __init__(self, message: str, *, limit: int | None = None, declared: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit  # the limit it was over, in bytes
        self.declared = declared  # the answer's own Content-Length, when it said it


class NotJsonError(ApiError):
    """The API answered with something that is not JSON."""


class TransportError(OrdersyncError):
    """The host could not be reached, or the connection broke, after every retry."""


class TooSlowError(TransportError):
    """The server did not answer within the timeout, and the caller asked to hear it rather than retry
    (e-guma splits such a window instead of asking for it whole again)."""


class StoreError(OrdersyncError):
    """The destination database could not be opened or written."""


class SyncError(OrdersyncError):
    """Some streams failed; ``str(err)`` names each (source/stream: what went wrong) and ``results`` holds them all."""

    def __init__(self, message: str, results: object = None) -> None:
        super().__init__(message)
        self.results = results


class ListenError(OrdersyncError):
    """A web server (``dashboard``, ``serve``) could not listen on the address asked for (a port in use, a port out
    of range, an address this machine does not have)."""


# --- exit statuses: one per failure class, so that a scheduler can tell them apart (docs/operations.md) ----------
EXIT_OK = 0
EXIT_FAILED = 1
"""A source, the destination or a file could not be read or written: the run did not do its job."""
EXIT_USAGE = 2
"""The command line is wrong (an unknown flag, a flag's value out of range): click's own status for this."""
EXIT_REJECTED = 3
"""``sync``: every source synced, but records are rejected and not stored (kept in ``_ordersync_rejects``)."""
EXIT_CONFIG = 4
"""The configuration file is missing, unreadable or holds a setting that is refused."""
EXIT_LISTEN = 5
"""``dashboard`` / ``serve``: the address or port cannot be listened on (in use, out of range)."""
EXIT_INTERNAL = 70
"""A bug in ordersync (an exception it did not expect): the one line says so; ``-v`` shows the traceback."""
EXIT_STATUSES = (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED, EXIT_CONFIG, EXIT_LISTEN, EXIT_INTERNAL)


def exit_status(exc: BaseException) -> int:
    """The documented exit status for an error that ends a command."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, ListenError):
        return EXIT_LISTEN
    if isinstance(exc, OrdersyncError | OSError):
        return EXIT_FAILED
    return EXIT_INTERNAL
