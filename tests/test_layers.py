"""Which package may import which, read from the source with ``ast``: every module of the clients (``ordersync.apis``)
and of the sandboxes (``ordersync.sandbox``) is read, so a file added tomorrow is held to the same rules.

The sandboxes emulate the vendors and the clients read them; if one side imported the other, a misreading of the
vendor written once would be shared by both and no test against the sandbox could catch it. So the sandboxes import
nothing of the clients or the sync engine (only themselves and the error classes), and the clients import no sandbox
and none of the web and fake-data libraries that only the sandboxes and the dashboard install (``ordersync[sandbox]``,
``ordersync[dashboard]``). Imports inside functions and under ``TYPE_CHECKING`` count like any other.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ordersync

ROOT = Path(ordersync.__file__).parent
SANDBOX_MAY_IMPORT = ("ordersync.sandbox", "ordersync.errors")
CLIENTS_MUST_NOT_IMPORT = ("ordersync.sandbox", "starlette", "uvicorn", "httptools", "uvloop", "faker", "jinja2")
MODULE_PATH = re.compile(r"ordersync(\.\w+)+(:\w+)?")  # an import string such as "ordersync.x.y:Class"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module (or module attribute) ``path`` imports, as an absolute dotted name with its line; and every
    string that is a whole ``ordersync.`` import path (what ``importlib`` would load)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.fullmatch(node.value):
            yield node.lineno, node.value.partition(":")[0]


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def sandbox_problems(path: Path) -> list[str]:
    return [f"{path.relative_to(ROOT.parent)}:{line} imports {name}" for line, name in sorted(imported(path))
            if within(name, ("ordersync",)) and not within(name, SANDBOX_MAY_IMPORT)]


def client_problems(path: Path) -> list[str]:
    return [f"{path.relative_to(ROOT.parent)}:{line} imports {name}" for line, name in sorted(imported(path))
            if within(name, CLIENTS_MUST_NOT_IMPORT)]


def test_both_packages_have_modules_to_read() -> None:
    assert len(modules("sandbox")) > 10 and len(modules("apis")) > 10


@pytest.mark.parametrize("path", modules("sandbox"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_sandbox_module_imports_only_the_sandbox_package_and_the_error_classes(path: Path) -> None:
    assert sandbox_problems(path) == []


@pytest.mark.parametrize("path", modules("apis"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_client_module_imports_no_sandbox_and_no_sandbox_library(path: Path) -> None:
    assert client_problems(path) == []


def test_the_rules_see_every_way_of_importing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader itself: absolute, relative, ``from package import module``, under TYPE_CHECKING, inside a function,
    and an import string; a module of the sandbox package is checked as if it lived there."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "ordersync")
    vendor = tmp_path / "ordersync" / "sandbox" / "acme"
    vendor.mkdir(parents=True)
    (vendor / "app.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from ordersync import apis\n"
        "from ...http import HttpClient\n"
        "from ..app import Sandbox\n"
        "from . import fake\n"
        "import ordersync.errors\n"
        "if TYPE_CHECKING:\n    from ordersync.paging import Stream\n"
        "def later():\n    import ordersync.store\n"
        "FACTORY = 'ordersync.apis.acme.client:AcmeClient'\n"
    )
    assert [p.rpartition(" imports ")[2] for p in sandbox_problems(vendor / "app.py")] == [
        "ordersync.apis", "ordersync.http.HttpClient", "ordersync.paging.Stream", "ordersync.store",
        "ordersync.apis.acme.client"]
    client = tmp_path / "ordersync" / "apis" / "acme"
    client.mkdir(parents=True)
    (client / "__init__.py").write_text("if False:\n    from ordersync.sandbox.acme import SANDBOX\n"
                                        "import starlette.requests\nfrom ordersync.http import HttpClient\n")
    assert [p.rpartition(" imports ")[2] for p in client_problems(client / "__init__.py")] == [
        "ordersync.sandbox.acme.SANDBOX", "starlette.requests"]
