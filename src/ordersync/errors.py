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
