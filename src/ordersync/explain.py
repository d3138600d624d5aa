"""The one line a user reads when a command ends on an exception, whatever raised it.

The command line's boundary (``ordersync.cli``) sends every exception here, so that no input can end in a
traceback without ``-v``: an :class:`~ordersync.errors.OrdersyncError` already carries its sentence; an error of
the operating system names the file and what to do; a missing optional module names the extra that brings it; any
other exception is a bug and is called one. Every line passes :func:`redact`, which knows each secret the
configuration brought (registered by :mod:`ordersync.config`) and hides a URL's password by parsing the URL, so
that a password holding ``@``, ``:`` or ``/`` is hidden whole, not from its first ``@`` on.
"""

from __future__ import annotations

import errno
import re

from ordersync.errors import EXIT_FAILED, OrdersyncError, exit_status

RERUN = "rerun with -v for the traceback"
EXTRAS = {"psycopg": "postgres", "psycopg_binary": "postgres", "duckdb": "duckdb", "duckdb_engine": "duckdb",
          "pyarrow": "parquet", "dagster": "dagster"}
"""Optional modules and the extra that installs each (``pip install 'ordersync[EXTRA]'``)."""

_secrets: set[str] = set()
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def remember_secret(value: str | None) -> None:
    """Hide ``value`` (a password, a key) from every line :func:`redact` passes, in every form it may take."""
    from urllib.parse import quote, unquote

    if value and len(value) >= 3:
        _secrets.update({value, quote(value, safe=""), quote(value), unquote(value)})


def redact(text: str) -> str:
    """``text`` without any remembered secret, and without the password of any URL in it (found by parsing)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL.sub(lambda m: url_without_password(m.group(0)), text)


def url_without_password(url: str) -> str:
    """``scheme://user:***@host/...``: everything between the user's ``:`` and the *last* ``@`` of the authority
    is the password (a password may hold ``@``, ``:``, ``/``, ``#``; the host never holds ``@``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@")
    if at < 0:
        return url
    userinfo, host = rest[:at], rest[at + 1:]
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}" if "/" not in user else url


def url_password(url: str) -> str | None:
    """The password of a URL as written (between the user's ``:`` and the last ``@`` of the authority), if any."""
    rest = url.partition("://")[2]
    at = rest.rfind("@")
    user, colon, password = rest[:max(at, 0)].partition(":")
    return password if colon and at >= 0 and "/" not in user else None


def status(exc: BaseException) -> int:
    """The documented exit status for ``exc`` (``ordersync.errors.EXIT_*``): an optional extra that is not
    installed is a failure to fix by installing it, not a bug."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".", 1)[0] in EXTRAS:
        return EXIT_FAILED
    return exit_status(exc)


def line(exc: BaseException) -> str:
    """The sentence for ``exc``: what went wrong and what to check."""
    if isinstance(exc, OrdersyncError):
        return redact(str(exc))
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".", 1)[0]
        extra = EXTRAS.get(top)
        if extra:
            return f"this needs the {extra} extra (module {top} is not installed): pip install 'ordersync[{extra}]'"
    if isinstance(exc, OSError):
        return redact(_os_error(exc)) + f" ({RERUN})"
    if isinstance(exc, MemoryError):
        return f"ran out of memory: lower concurrency or max_body_mb, or free memory ({RERUN})"
    detail = redact(str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
    return (f"internal error (a bug in ordersync): {type(exc).__name__}{': ' + detail if detail else ''}; "
            f"{RERUN}, and report it")


def _os_error(exc: OSError) -> str:
    """An operating system error as what to do: the file it is about, and the fix for the common causes."""
    name = exc.filename or exc.filename2
    where = f"{name}: " if name else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        return f"{where}no space left on the device: free some space, or write somewhere else"
    if exc.errno == errno.EROFS:
        return f"{where}the file system is read-only: write somewhere else"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}permission denied: check the file's owner and permissions, or use another path"
    if exc.errno == errno.EISDIR:
        return f"{where}is a folder: name a file"
    if exc.errno == errno.ENOENT:
        return f"{where}no such file or folder: check the path"
    return f"{where}{reason}"
