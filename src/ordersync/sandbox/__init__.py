"""The sandboxes: local emulators of the vendors' APIs, one folder each, beside what they all share.

Shared here: the base app (``app.py``), the document store, vendor-style errors, faults, the live shop and the
runner. Each vendor's emulator is a sub-package (``frontcore/``, ``eguma/``, ...) that names its :class:`Sandbox`
subclass ``SANDBOX``; :func:`registry` finds them by folder, as :func:`ordersync.apis.registry` finds the clients,
so a new vendor's sandbox is one new folder. Nothing in this package imports the clients or the sync engine: a
vendor's documented facts are written here in the sandbox's own words, and the tests hold the two sides together.
Importing this module loads no web framework; :func:`registry` does (it imports every vendor's app).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ordersync.sandbox.app import Sandbox, SandboxOptions


@cache
def registry() -> dict[str, type[Sandbox]]:
    """Every vendor's sandbox class by API name (the name the client registry uses), in name order."""
    from ordersync.sandbox.app import Sandbox

    found: dict[str, type[Sandbox]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        sandbox = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SANDBOX", None)
        if isinstance(sandbox, type) and issubclass(sandbox, Sandbox):
            found[sandbox.name] = sandbox
    return found


def get(name: str) -> type[Sandbox]:
    """The sandbox class of API ``name``; KeyError when no folder provides it."""
    sandboxes = registry()
    if name not in sandboxes:
        raise KeyError(name)
    return sandboxes[name]


def load_sandbox(name: str, options: SandboxOptions | None = None) -> Sandbox:
    """A sandbox of API ``name``, its data generated (or read from ``options.data_path``)."""
    return get(name)(options)
