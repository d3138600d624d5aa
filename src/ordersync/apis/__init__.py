"""The registry of APIs: every sub-package with an ``API`` spec is an API, so a new one is one new folder."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ordersync.apis.base import ApiSpec


@cache
def registry() -> dict[str, ApiSpec]:
    specs: dict[str, ApiSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "API", None)
        if isinstance(spec, ApiSpec):
            specs[spec.name] = spec
    return specs


def get(name: str) -> ApiSpec:
    apis = registry()
    if name not in apis:
        raise KeyError(name)
    return apis[name]
