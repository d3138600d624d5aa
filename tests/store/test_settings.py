"""[destination] settings, and the ways PostgreSQL gets its password and TLS setting besides the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync.config import parse
from ordersync.errors import ConfigError, StoreError
from ordersync.store import open_store
from tests.pg_server import PASSWORD, PgServer

SOURCE = {"c": {"type": "frontcore", "api_key": "k"}}


def test_destination_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PW", "s3cret")
    cfg = parse({"destination": {"url": "postgresql://me:${PG_PW}@db/orders", "schema": "reports",
                                 "lock_wait_seconds": 5}, "sources": SOURCE})
    assert cfg.destination == "postgresql://me:s3cret@db/orders"
    assert cfg.store_options() == {"schema": "reports", "lock_wait": 5.0}
    bad = [({"url": "sqlite:///x.db", "schema": "reports"}, "schema applies to PostgreSQL urls only"),
           ({"url": "postgresql://db/x", "schema": "a; drop"}, "schema must be a plain name"),
           ({"url": "sqlite:///x.db", "lock_wait_seconds": "soon"}, "lock_wait_seconds must be a number"),
           ({"url": "orders.db"}, "url must look like sqlite:///PATH"),
           ({"url": "sqlite:///x.db", "pool": 3}, "[destination] takes the settings url, schema, lock_wait_seconds")]
    for destination, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse({"destination": destination, "sources": SOURCE})


def test_an_unknown_scheme_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as refused:
        open_store("mysql://me:hunter2@db/orders")
    assert "not supported" in str(refused.value) and "hunter2" not in str(refused.value)


def test_the_password_from_libpq_environment_and_pgpass(pg_server: PgServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_server.new_database()
    without = url.replace(f":{PASSWORD}@", "@")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    store = open_store(without)
    store.lock("shop")  # the lock's own connection finds the password the same way
    store.close()
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:ordersync:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    open_store(without).close()
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(StoreError, match="the server wants a password for user 'ordersync'"):
        open_store(without)


def test_sslmode_is_honoured(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    open_store(url + "?sslmode=disable").close()
    with pytest.raises(StoreError) as refused:  # the test server speaks no TLS: required TLS must fail clearly
        open_store(url + "?sslmode=require")
    message = str(refused.value)
    assert "check sslmode" in message and PASSWORD not in message and "\n" not in message
