"""What to check when PostgreSQL or libpq refuses: one line per known cause, from the server's or libpq's message
(which is shown as it is, its password hidden, when the cause is not known)."""

from __future__ import annotations

from sqlalchemy.engine.url import URL

from ordersync.store.bounds import PgBounds
from ordersync.store.urls import redact


def explain(reason: str, url: URL, bounds: PgBounds) -> str:
    """What to check, from libpq's or the server's message."""
    text = reason.lower()
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "no answer from the server" in text:
        return bounds.frozen(where)
    if "too many clients" in text or "connection slots are reserved" in text or "too many connections" in text:
        return ("the server has no free connection (max_connections, or the user's or database's connection "
                "limit, is reached): nothing more was written; close idle sessions (see pg_stat_activity) or raise "
                "the limit, then run the sync again")
    if "shutting down" in text or "administrator command" in text:
        return ("the server is shutting down (or an administrator ended the session): nothing after the last "
                "committed page was written; run the sync again once the server is back up")
    if "starting up" in text or "recovery mode" in text or "not yet accepting connections" in text:
        return "the server is starting up or recovering: nothing was written; run the sync again in a moment"
    if "statement timeout" in text:
        return (f"a statement ran longer than statement_timeout_seconds ({bounds.statement:g}) and the server "
                "cancelled it: the server is overloaded or a query is slow; raise statement_timeout_seconds in "
                "[destination] if that is expected, then run the sync again")
    if "lock timeout" in text:
        return (f"waited more than lock_timeout_seconds ({bounds.lock:g}) for a lock another session holds (a schema "
                "upgrade, a table locked by hand: see pg_locks); run the sync again when it is released, or raise "
                "lock_timeout_seconds in [destination]")
    if "password authentication failed" in text:
        return (f"wrong password for user '{url.username}': check the password (${{VAR}} in the url, "
                "PGPASSWORD or ~/.pgpass)")
    if "no password supplied" in text or "fe_sendauth" in text:
        return f"the server wants a password for user '{url.username}': set PGPASSWORD, ~/.pgpass or ${{VAR}}"
    if "does not exist" in text and "database" in text:
        return f"the database '{url.database}' does not exist: create it (createdb {url.database}) or fix the url"
    if "does not exist" in text and "role" in text:
        return f"the user '{url.username}' does not exist on the server: fix the user in the url"
    if "timeout expired" in text:
        return (f"no answer in connect_timeout_seconds ({bounds.connect:g}): check the host and port, and that the "
                "server is running (not stopped or frozen) and reachable")
    if "connection refused" in text or "could not connect" in text or "timeout" in text or "timed out" in text:
        return "nothing answers there: check the host and port, and that the server is running and reachable"
    if "could not translate host name" in text or "name or service not known" in text:
        return "unknown host name: check the host in the url"
    if "ssl" in text:
        return f"SSL failed ({redact(reason)}): check sslmode in the url"
    return redact(reason)
