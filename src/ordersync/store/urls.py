"""Destination URLs: their scheme, what is wrong with one before it is opened, and how to show one without its
password. (Which backend a scheme opens: :mod:`ordersync.store.factory`.)"""

from __future__ import annotations

SCHEMES = ("sqlite:///PATH", "postgresql://USER@HOST:5432/DB", "duckdb:///PATH")


def redact(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` anywhere in ``text``, the password found by
    parsing (it may hold ``@ : / #``), and every secret the configuration brought hidden too."""
    from ordersync.explain import redact as hide

    return hide(text)


def destination_problem(url: str) -> str | None:
    """What is wrong with a destination URL, before anything is opened: a URL that names no file and no server
    (``sqlite://m.db``: two slashes, an in-memory database that vanishes with the process, into which a sync would
    write in vain), a port that is not a number, a broken IPv6 address. None when it may be opened."""
    scheme = scheme_of(url)
    if scheme in ("sqlite", "duckdb"):
        rest = url.split("://", 1)[1] if "://" in url else ""
        path = rest[1:].split("?", 1)[0] if rest.startswith("/") else ""
        if not path or path == ":memory:":
            name = rest.split("?", 1)[0].lstrip("/") or "orders.db"
            return (f"'{redact(url)}' names no file (an in-memory database would vanish with the process): write "
                    f"{scheme}:///{name if name != ':memory:' else 'orders.db'} (three slashes: a file here) or "
                    f"{scheme}:////absolute/path/{'orders.db' if scheme == 'sqlite' else 'orders.duckdb'}")
        return None
    if scheme in ("postgresql", "postgres"):
        return _postgres_problem(url)
    return f"'{redact(url)}' is not a destination url: use one of {', '.join(SCHEMES)}"


def _postgres_problem(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    example = "postgresql://USER@HOST:5432/DB (a password with @ : / # must be %-encoded, or set by ${VAR})"
    try:
        parsed = make_url(url)
        port = parsed.port
    except (ValueError, TypeError):
        return (f"'{redact(url)}' is not a PostgreSQL url (its port is not a number, or an IPv6 address lacks its "
                f"closing ]): use {example}")
    except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError and friends: any refusal is the same advice
        return f"'{redact(url)}' is not a PostgreSQL url: use {example}"
    if port is not None and not 1 <= port <= 65535:
        return f"'{redact(url)}' has port {port}; a port is 1 to 65535 (PostgreSQL's is 5432)"
    if not parsed.host and not parsed.database and not parsed.query.get("host"):
        return f"'{redact(url)}' names no server and no database: use {example}"
    return None


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0].lower() if ":" in url else ""

