"""The client registry and the sandbox registry name the same APIs, each found from its own folders."""

from __future__ import annotations

from ordersync import apis, sandbox


def test_every_api_has_a_sandbox_and_every_sandbox_a_client() -> None:
    clients, sandboxes = set(apis.registry()), set(sandbox.registry())
    assert clients - sandboxes == set(), "these APIs have no sandbox folder in ordersync/sandbox/"
    assert sandboxes - clients == set(), "these sandboxes have no client folder in ordersync/apis/"


def test_a_sandbox_is_named_and_titled_like_its_client() -> None:
    for name, emulator in sandbox.registry().items():
        assert (emulator.name, emulator.title) == (name, apis.get(name).title)
